// The files that make an emulated named pipe visible to other processes.
//
//   RUNTIME/p-KEY.lock       flock'ed while instances are added or removed
//   RUNTIME/p-KEY/meta       the pipe's type, access, max instances, default wait
//   RUNTIME/p-KEY/ID.lock    held (flock) by the instance's process for its life
//   RUNTIME/p-KEY/ID.sock    the instance's listening socket while it is free;
//   RUNTIME/p-KEY/ID.busy    renamed so while a client has it or it is disconnected
//
// A client claims a free instance by connecting to ID.sock and then renaming it
// to ID.busy: rename is atomic, so exactly one client wins each instance, and
// it needs nothing from the server's thread (CreateFile succeeds before
// ConnectNamedPipe, as on Windows). An instance whose ID.lock is not held
// belongs to a process that died: its files are stale and are reclaimed.
#pragma once

#include "../common/deadline.hpp"

#include <pipeslot/message_channel.hpp>

#include <optional>
#include <sys/types.h>
#include <string>
#include <system_error>

namespace pipeslot::posix {

struct PipeMeta {
    PipeType type = PipeType::byte;
    PipeAccess access = PipeAccess::duplex;
    unsigned max_instances = unlimited_instances;
    std::int64_t default_wait_ms = 50;  // -1: forever
    bool reject_remote = true;
};

struct InstanceSizes {
    std::size_t in_buffer = 0, out_buffer = 0;
};

// The per-name directory, open; and the directory its sockets live in: the
// same one for a private pipe; for a shared one its "claims" subdirectory,
// the only place other users may rename in (claiming needs that), while the
// meta and lock files stay where only the creator can write.
class PipeDirectory {
public:
    PipeDirectory() = default;
    PipeDirectory(PipeDirectory&& o) noexcept;
    PipeDirectory& operator=(PipeDirectory&& o) noexcept;
    ~PipeDirectory();
    int fd() const noexcept { return fd_; }
    const std::string& path() const noexcept { return path_; }
    int sockets_fd() const noexcept { return sockets_fd_; }
    const std::string& sockets_path() const noexcept { return sockets_path_; }
    uid_t owner() const noexcept { return owner_; }
    std::string address(const std::string& socket_file) const;  // for bind/connect

    // `create`: make it if missing (a server), owned by this user.
    static std::error_code open(const Name& name, bool create, bool shared, PipeDirectory& out);

private:
    void reset() noexcept;
    int fd_ = -1, sockets_fd_ = -1;
    std::string path_, sockets_path_;
    uid_t owner_ = 0;
};

// One server instance's registration: its lock and listening socket.
struct Registration {
    PipeDirectory dir;
    std::string runtime, key, id;
    int lock_fd = -1;
    int listen_fd = -1;
    bool shared = false;  // allow_other_users: in the shared directory, open to every local user
    PipeMeta meta;
};

std::error_code register_instance(const Name& name, const ServerOptions& options, Registration& out);
void unregister_instance(Registration& r) noexcept;
// Moves ID.busy back to ID.sock (listening) or the other way round.
std::error_code set_listening(const Registration& r, bool listening);
bool is_claimed(const Registration& r);

struct Claim {
    int fd = -1;
    PipeMeta meta;
    InstanceSizes sizes;
};
// Connects to a free instance, waiting up to `wait` while all are busy. The
// hello frame is sent before it returns. This user's own pipes are looked for
// first, then pipes other users opened to everyone.
// errc::invalid_argument if `read_mode` is message on a byte pipe.
std::error_code claim_instance(const Name& name, const ClientOptions& options, const detail::Deadline& wait,
                               Claim& out);

}  // namespace pipeslot::posix
