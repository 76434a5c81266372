// The few files that make a pipe name findable, all in the user's private
// runtime directory (runtime_dir.hpp), so no other user can create, link,
// lock or rename any of them:
//
//   RUNTIME/p-KEY.members  every server process of the name holds a read lock
//                          (an OFD lock: freed by the kernel when the process dies)
//   RUNTIME/p-KEY.broker   the one process that owns the name's state holds the write lock
//   RUNTIME/p-KEY.sock     that process's listening socket, where clients and the
//                          other server processes connect
//
// and for a pipe open to other users (allow_other_users) one more socket, its
// door, in a directory of this user's inside the shared directory:
//
//   SHARED/u-UID/p-KEY.sock
//
// Locks are taken without waiting (bounded retries), files are created with
// O_NOFOLLOW and checked (a regular file of ours, one link) before use, and a
// socket is bound under a temporary name and renamed into place, so a client
// sees either a listening broker or nothing usable (never half a broker).
#pragma once

#include <pipeslot/name.hpp>

#include <string>
#include <sys/types.h>
#include <system_error>

namespace pipeslot::posix {

class NameFiles {
public:
    NameFiles() = default;
    NameFiles(const NameFiles&) = delete;
    NameFiles& operator=(const NameFiles&) = delete;
    ~NameFiles();

    // A server process joins the name: opens the runtime directory and takes
    // the members read lock (retrying for a bounded time while a last server
    // removes the files).
    std::error_code join(const Name& name);
    const std::string& key() const noexcept { return key_; }
    bool joined() const noexcept { return members_fd_ >= 0; }

    // Takes the broker lock if no live process holds it.
    bool try_become_broker();
    bool is_broker() const noexcept { return broker_fd_ >= 0; }
    // Binds and listens on the broker socket (replacing a dead broker's). Non-blocking, close-on-exec.
    std::error_code bind_broker_socket(int& listen_fd);
    // The same for the door in the shared directory; the socket is open to every local user.
    std::error_code bind_door(int& listen_fd);
    // Where a server process of the name connects to the broker.
    std::string broker_socket_address() const;
    // How many server processes of the name are alive (hold the members lock), this one included.
    std::size_t member_count() const;
    // True when this is the only server process of the name: the caller may then remove().
    bool only_member();
    // For a server process leaving the name: drops its own share of the
    // members lock, then asks for all of it. Of processes leaving at once,
    // the last to drop its share gets it, so one of them removes the files.
    bool last_to_leave();
    // Removes every file of the name (broker and only member, at its end).
    void remove() noexcept;
    // Lets go of the broker lock (another server process then takes over).
    void release_broker() noexcept;

private:
    int dir_fd_ = -1, members_fd_ = -1, broker_fd_ = -1, door_dir_fd_ = -1;
    std::string dir_path_, key_, door_dir_path_;
    bool door_bound_ = false;
};

// --- the client's side -------------------------------------------------------------

// Where a client finds a name's broker, and whose it must be.
struct BrokerAddress {
    int dir_fd = -1;  // open while connecting if paths are long (they go through /proc/self/fd); else -1
    std::string dir_path, socket_file;
    uid_t owner = 0;
    bool own = true;  // this user's private directory (else another user's door)
    ~BrokerAddress();
};
// `server_user`: empty for this user's pipes; a uid or user name for that user's
// pipes opened to others. not_found if there is no such directory.
std::error_code locate_broker(const Name& name, const std::string& server_user, BrokerAddress& out);
// During a change of broker (the old one died, another server process is
// taking over) the socket refuses connections for a moment: true while a
// server process of the name is alive. Only known for this user's pipes.
bool name_has_live_servers(const BrokerAddress& address);

}  // namespace pipeslot::posix
