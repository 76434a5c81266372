// Announcements and queries on top of Mailslot and Broadcaster. The messages:
//   "pipeslot-announce/1\n" HOST "\n" NAME     (the pipe \\HOST\pipe\NAME)
//   "pipeslot-query/1\n" HOST "\n" SLOT        (answer to \\HOST\mailslot\SLOT)
#include "cancel_until.hpp"
#include "deadline.hpp"

#include <pipeslot/discovery.hpp>
#include <pipeslot/error.hpp>
#include <pipeslot/mailslot.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <random>
#include <thread>

namespace pipeslot {
namespace {

constexpr std::string_view announce_tag = "pipeslot-announce/1";
constexpr std::string_view query_tag = "pipeslot-query/1";

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

bool is_this_host(IpcSystem& system, const std::string& host) { return upper(host) == upper(system.host_name()); }

std::string message(std::string_view tag, const std::string& host, const std::string& name) {
    return std::string(tag) + "\n" + host + "\n" + name;
}

// HOST and NAME of a message with `tag`; false if it is anything else.
bool parse(std::span<const std::byte> bytes, std::string_view tag, std::string& host, std::string& name) {
    const std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    const auto first = text.find('\n');
    const auto second = first == std::string::npos ? first : text.find('\n', first + 1);
    if (second == std::string::npos || std::string_view(text).substr(0, first) != tag) return false;
    host = text.substr(first + 1, second - first - 1);
    name = text.substr(second + 1);
    return !host.empty() && !name.empty();
}

// The pipe a client here should open for NAME announced by HOST.
Located located(IpcSystem& system, const std::string& host, const std::string& name) {
    const std::string server = is_this_host(system, host) ? "." : host;
    return {"\\\\" + server + "\\pipe\\" + name, host};
}

// Every distinct announcement that arrives on `listener` before `deadline`.
std::vector<Located> collect(IpcSystem& system, Mailslot& listener, const detail::Deadline& deadline) {
    std::vector<Located> found;
    while (!deadline.expired()) {
        std::error_code ec;
        const auto m = listener.receive_message(ec);
        std::string host, name;
        if (ec || !parse(m, announce_tag, host, name)) continue;
        auto l = located(system, host, name);
        const bool seen = std::any_of(found.begin(), found.end(), [&](const Located& x) { return x.pipe == l.pipe; });
        if (!seen) found.push_back(std::move(l));
    }
    return found;
}

void send_text(Broadcaster& to, const std::string& text, std::error_code& ec) {
    to.send(std::as_bytes(std::span(text)), ec);
}

// A thread that runs `step` until stopped, and the wake-up for its waits.
struct Worker {
    std::mutex mutex;
    std::condition_variable wake;
    bool stopping = false;
    bool finished = false;
    std::thread thread;
    void stop() noexcept {
        {
            std::lock_guard lock(mutex);
            stopping = true;
        }
        wake.notify_all();
        if (thread.joinable()) thread.join();
    }
};

}  // namespace

std::string host_name() { return native_ipc().host_name(); }

struct Announcer::State : Worker {};

Announcer::Announcer() = default;
Announcer::Announcer(Announcer&&) noexcept = default;
Announcer& Announcer::operator=(Announcer&& other) noexcept {
    if (this != &other) {
        stop();
        state_ = std::move(other.state_);
    }
    return *this;
}
Announcer::~Announcer() { stop(); }

void Announcer::stop() noexcept {
    if (state_) state_->stop();
    state_.reset();
}

Announcer Announcer::start(std::string_view pipe, std::string_view slot, std::chrono::milliseconds interval,
                           std::error_code& ec, IpcSystem& system) {
    const auto name = PipeName::parse(pipe, ec);
    if (ec) return {};
    const auto target = MailslotName::parse(slot, ec);
    if (ec) return {};
    if (!name.is_local() || interval.count() <= 0) {
        ec = errc::invalid_argument;  // a server announces its own pipes
        return {};
    }
    const auto text = message(announce_tag, system.host_name(), name.name());
    if (!target.is_local() && text.size() > max_network_mailslot_message) {
        ec = errc::message_too_large;
        return {};
    }
    Announcer a;
    a.state_ = std::make_unique<State>();
    State* s = a.state_.get();
    s->thread = std::thread([s, &system, slot = std::string(slot), text, interval] {
        // Opened anew each time: a local listener may come and go.
        std::unique_lock lock(s->mutex);
        do {
            std::error_code ignored;  // nobody listening is not an error
            auto to = system.open_broadcaster(slot, ignored);
            if (!ignored) send_text(to, text, ignored);
        } while (!s->wake.wait_for(lock, interval, [s] { return s->stopping; }));
    });
    return a;
}

std::vector<Located> locate_servers(std::string_view slot, Timeout timeout, std::error_code& ec, IpcSystem& system) {
    if (!timeout.is_valid() || timeout.is_forever()) {
        ec = errc::invalid_argument;
        return {};
    }
    MailslotOptions options;
    options.read_timeout = std::chrono::milliseconds(20);
    const detail::Deadline deadline(timeout);
    auto listener = system.create_mailslot(slot, options, ec);
    if (ec) return {};
    return collect(system, listener, deadline);
}

struct Responder::State : Worker {
    Mailslot queries;
};

Responder::Responder() = default;
Responder::Responder(Responder&&) noexcept = default;
Responder& Responder::operator=(Responder&& other) noexcept {
    if (this != &other) {
        stop();
        state_ = std::move(other.state_);
    }
    return *this;
}
Responder::~Responder() { stop(); }

void Responder::stop() noexcept {
    if (!state_) return;
    State& s = *state_;
    std::unique_lock lock(s.mutex);
    s.stopping = true;
    // The thread waits in a receive: cancel until it has seen `stopping`.
    detail::cancel_until(lock, s.wake, [&] { return s.finished; }, [&] { s.queries.cancel(); });
    lock.unlock();
    s.thread.join();
    state_.reset();
}

Responder Responder::start(std::string_view pipe, std::string_view slot, std::error_code& ec, IpcSystem& system) {
    const auto name = PipeName::parse(pipe, ec);
    if (ec) return {};
    if (!name.is_local()) {
        ec = errc::invalid_argument;
        return {};
    }
    Responder r;
    r.state_ = std::make_unique<State>();
    MailslotOptions options;
    options.read_timeout = Timeout::forever();
    r.state_->queries = system.create_mailslot(slot, options, ec);
    if (ec) return {};
    State* s = r.state_.get();
    const auto answer = message(announce_tag, system.host_name(), name.name());
    s->thread = std::thread([s, &system, answer] {
        for (;;) {
            std::error_code io;
            const auto m = s->queries.receive_message(io);
            {
                std::lock_guard lock(s->mutex);
                if (s->stopping) break;
            }
            std::string host, reply_slot;
            if (io || !parse(m, query_tag, host, reply_slot)) continue;
            const std::string server = is_this_host(system, host) ? "." : host;
            auto to = system.open_broadcaster("\\\\" + server + "\\mailslot\\" + reply_slot, io);
            if (!io) send_text(to, answer, io);
        }
        std::lock_guard lock(s->mutex);
        s->finished = true;
        s->wake.notify_all();
    });
    return r;
}

std::vector<Located> query_servers(std::string_view slot, Timeout timeout, std::error_code& ec, IpcSystem& system) {
    if (!timeout.is_valid() || timeout.is_forever()) {
        ec = errc::invalid_argument;
        return {};
    }
    std::random_device random;
    const std::string reply_name = "pipeslot\\reply\\" + std::to_string(random()) + std::to_string(random());
    MailslotOptions options;
    options.read_timeout = std::chrono::milliseconds(20);
    auto replies = system.create_mailslot("\\\\.\\mailslot\\" + reply_name, options, ec);
    if (ec) return {};
    auto to = system.open_broadcaster(slot, ec);
    if (ec) return {};
    const detail::Deadline deadline(timeout);
    send_text(to, message(query_tag, system.host_name(), reply_name), ec);
    if (ec) return {};
    return collect(system, replies, deadline);
}

}  // namespace pipeslot
