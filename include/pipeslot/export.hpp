// Symbol visibility for the public API.
#pragma once

#if defined(_WIN32)
#  if defined(PIPESLOT_BUILDING)
#    define PIPESLOT_API __declspec(dllexport)
#  else
// Only functions are exported, never data, so consumers need no dllimport.
#    define PIPESLOT_API
#  endif
#elif defined(__GNUC__)
#  define PIPESLOT_API __attribute__((visibility("default")))
#else
#  define PIPESLOT_API
#endif
