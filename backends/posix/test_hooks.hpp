// Test-only: stops the process at a named step of connecting, so that a test
// can SIGKILL it exactly there (tests/posix/name_crash_test.cpp). Inert unless
// PIPESLOT_TEST_STOP_AT names the step; then the process writes
// "pipeslot-stopped-at STEP" on its standard output and stops itself (SIGSTOP).
#pragma once

namespace pipeslot::posix {
void test_stop_point(const char* step) noexcept;
}
