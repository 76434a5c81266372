// Where the POSIX backend keeps its sockets, and how a name becomes a file
// name there: never the name as typed, always a hash of its folded form, so no
// name can reach outside the directory and every name fits the 108-byte limit
// of a socket path.
#pragma once

#include <pipeslot/name.hpp>

#include <string>
#include <string_view>
#include <system_error>

namespace pipeslot::posix {

// Private: the per-user directory, $PIPESLOT_RUNTIME_DIR, else
// $XDG_RUNTIME_DIR/pipeslot, else /tmp/pipeslot-UID. Created 0700 when
// missing; refused (access_denied) unless it is a real directory owned by this
// user that nobody else can enter. Only this user can reach what is inside.
//
// Shared: for pipes created with allow_other_users, $PIPESLOT_SHARED_DIR, else
// /tmp/pipeslot-shared: sticky and world-writable like /tmp, owned by root or
// this user; each pipe's own directory in it belongs to its creator.
enum class Scope { private_to_user, shared };
std::error_code runtime_directory(Scope scope, std::string& out);

// The checks runtime_directory applies, for one path (exposed for tests).
std::error_code check_private_directory(const std::string& path);
std::error_code check_shared_directory(const std::string& path);

// "p-" or "m-" and 32 hex digits of a 128-bit FNV-1a hash of the folded name.
std::string name_key(const Name& name);
std::string name_key(NameKind kind, std::string_view folded_name);

// An address usable for bind/connect for `file` inside the directory open as
// `dir_fd` whose path is `dir_path`, even when the full path is too long.
struct SocketAddress {
    std::string path;
};
SocketAddress socket_address(int dir_fd, const std::string& dir_path, const std::string& file);

}  // namespace pipeslot::posix
