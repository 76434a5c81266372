// A gateway's plaintext connection handed to an instance in the gateway's own
// process (docs/gateway.md, "No extra hop"). The gateway offers its client's
// TCP socket here under a token that rides in its open request; if the broker
// picks an instance of this process, that instance claims the socket and
// serves the network client on it directly, with no relay between them.
// Tokens are only ever claimed in the process that offered them: the broker
// passes one on only to the process whose pid made the request.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pipeslot::posix {

// The gateway's hold on the connections it handed over: it counts them as
// its own until the instance lets go, and its stop() ends them.
class HandedConnections {
public:
    class Lease;  // one connection, held by the instance's channel
    // `log`: the gateway's log, for how a connection ended where the gateway would have said.
    explicit HandedConnections(std::function<void(std::string_view)> log = {}) : log_(std::move(log)) {}
    // The gateway's connections in all: `relaying`, those its own threads
    // still count (some may have been claimed meanwhile), and those handed over.
    std::size_t total_with(std::size_t relaying) const;
    // A thread of the gateway whose connection was claimed stops counting it
    // (under the gateway's own lock, with its count).
    void acknowledge();
    // The gateway stops: each such connection ends (the server sees its client
    // go), and none is claimed from now on (its offers stay the gateway's).
    void shut_down_all();
    // A lease on `fd` for an instance, unless the gateway is stopping (null then).
    static std::shared_ptr<Lease> lease(const std::shared_ptr<HandedConnections>& owner, int fd, std::string label);
    // Until none is left, or `until` (none: no end; false then).
    bool wait_none(std::optional<std::chrono::steady_clock::time_point> until) const;

private:
    friend class Lease;
    std::size_t with_client_locked() const;
    const std::function<void(std::string_view)> log_;
    std::mutex log_mutex_;
    bool log_stopped_ = false;  // shut_down_all: the gateway's log is not to be called from now on
    mutable std::mutex mutex_;
    mutable std::condition_variable released_;
    std::vector<int> fds_;
    std::size_t unacknowledged_ = 0;  // claimed; the gateway's thread still counts them too
    bool stopping_ = false;
};

class HandedConnections::Lease {
public:
    ~Lease();  // before the descriptor is closed
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    // The instance ends the connection for a reason the gateway logs
    // ("ended LABEL: REASON"); once, whoever calls it first.
    void ended(std::string_view reason);

private:
    friend class HandedConnections;
    Lease(std::shared_ptr<HandedConnections> owner, int fd, std::string label);  // under the owner's lock
    std::shared_ptr<HandedConnections> owner_;
    int fd_;
    std::string label_;  // "CLIENT on NAME", as the gateway names it
    std::atomic<bool> reported_{false};
};

struct Offered {
    int fd = -1;  // blocking once claimed
    std::shared_ptr<HandedConnections::Lease> lease;
};

// The gateway: `fd` is offered until claimed or withdrawn (returns the token,
// never 0); `label` names it in the gateway's log.
std::uint64_t offer_connection(int fd, std::shared_ptr<HandedConnections> owner, std::string label);
// The gateway, once its open is over: true if the socket is still its own
// (nobody claimed it), false if an instance has it now.
bool withdraw_connection(std::uint64_t token);
// The instance's process: the socket, if `token` is still on offer here. It
// is the instance's from then on (close_client in name_node.hpp closes it).
bool claim_connection(std::uint64_t token, Offered& out);

// The last of a network connection whose server end is done with it: what the
// client still sends is read and dropped until it closes (at most a few
// seconds), so that closing never resets the connection before the client
// has read the server's last bytes. Takes `fd` (its sending side shut already).
void close_network_connection(int fd) noexcept;
// Reads and drops what the peer has sent so far: true once it has closed (or
// the connection failed), false while it may send more.
bool drain_to_end(int fd) noexcept;

}  // namespace pipeslot::posix
