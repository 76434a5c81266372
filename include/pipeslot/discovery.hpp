// Locating named-pipe servers with mailslots, the classic Windows pattern:
// servers announce their pipe on a well-known mailslot and clients collect
// the announcements; or a client broadcasts a query naming a reply mailslot
// and servers answer it. Messages are short text (see docs/mailslots.md).
#pragma once

#include <pipeslot/export.hpp>
#include <pipeslot/ipc_system.hpp>
#include <pipeslot/timeout.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pipeslot {

// Where servers announce (every host) and where clients listen (this host).
inline constexpr std::string_view default_announce_slot = R"(\\*\mailslot\pipeslot\announce)";
inline constexpr std::string_view default_listen_slot = R"(\\.\mailslot\pipeslot\announce)";
inline constexpr std::string_view default_query_slot = R"(\\*\mailslot\pipeslot\query)";
inline constexpr std::string_view default_respond_slot = R"(\\.\mailslot\pipeslot\query)";

struct Located {
    std::string pipe;  // usable from this host: \\.\pipe\NAME for a server here, else \\HOST\pipe\NAME
    std::string host;  // the announcing host's name
};

// Announces a local pipe (\\.\pipe\NAME) on `slot` at once and then every
// `interval`, from a thread of its own, until stopped.
class PIPESLOT_API Announcer {
public:
    Announcer();
    Announcer(Announcer&&) noexcept;
    Announcer& operator=(Announcer&&) noexcept;
    ~Announcer();  // stops
    static Announcer start(std::string_view pipe, std::string_view slot, std::chrono::milliseconds interval,
                           std::error_code& ec, IpcSystem& system = native_ipc());
    void stop() noexcept;

private:
    struct State;
    std::unique_ptr<State> state_;
};

// Listens on the local mailslot `slot` for `timeout` and returns every
// distinct server announced meanwhile.
PIPESLOT_API std::vector<Located> locate_servers(std::string_view slot, Timeout timeout, std::error_code& ec,
                                                 IpcSystem& system = native_ipc());

// Answers queries that arrive on the local mailslot `slot` with `pipe`.
class PIPESLOT_API Responder {
public:
    Responder();
    Responder(Responder&&) noexcept;
    Responder& operator=(Responder&&) noexcept;
    ~Responder();  // stops
    static Responder start(std::string_view pipe, std::string_view slot, std::error_code& ec,
                           IpcSystem& system = native_ipc());
    void stop() noexcept;

private:
    struct State;
    std::unique_ptr<State> state_;
};

// Sends a query to `slot` (e.g. \\*\mailslot\pipeslot\query) naming a reply
// mailslot of its own, and collects the answers that arrive within `timeout`.
PIPESLOT_API std::vector<Located> query_servers(std::string_view slot, Timeout timeout, std::error_code& ec,
                                                IpcSystem& system = native_ipc());

// This host's name, as announcements carry it.
PIPESLOT_API std::string host_name();

}  // namespace pipeslot
