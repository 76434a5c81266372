// The in-memory world of the fake: hosts, pipes, connections and mailslots,
// all under one mutex per network, with one condition variable that every
// change notifies. Simple, and deterministic.
#pragma once

#include <pipeslot/testing/fake.hpp>

#include <condition_variable>
#include <functional>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace pipeslot::testing {

struct FakeState {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<FakeHost*> hosts;
    std::uint64_t listen_order = 0;  // the order instances began listening in
    // Event loops' one-shot calls (pipeslot/asio/), made at the next change.
    std::vector<std::function<void()>> watchers;

    // With `mutex` held: wakes every waiting call and watcher.
    void notify() {
        changed.notify_all();
        auto called = std::move(watchers);
        watchers.clear();
        for (auto& call : called) call();
    }
    void watch(std::function<void()> call) {
        std::lock_guard lock(mutex);
        watchers.push_back(std::move(call));
    }

    // Waits, with `lock` held, until ready(), the timeout, or a cancel of the
    // caller's object since `ticket`. False with ec = timed_out or cancelled.
    template <class Ready>
    bool wait(std::unique_lock<std::mutex>& lock, Timeout timeout, const std::uint64_t& cancels,
              std::uint64_t ticket, Ready ready, std::error_code& ec) {
        const auto done = [&] { return ready() || cancels != ticket; };
        if (timeout.is_forever()) changed.wait(lock, done);
        else changed.wait_for(lock, timeout.value(), done);
        if (ready()) return true;
        ec = cancels != ticket ? make_error_code(errc::cancelled) : make_error_code(errc::timed_out);
        return false;
    }
};

// What the asynchronous layer waits on: the next change of `state`.
inline EventSource watch_source(FakeState& state) {
    return {invalid_native_handle, false, [s = &state](std::function<void()> call) { s->watch(std::move(call)); }};
}

struct Message {
    std::vector<std::byte> data;
    std::size_t read = 0;
    std::size_t left() const { return data.size() - read; }
};

// What flows between one client and one instance.
struct Connection {
    std::deque<Message> to_server, to_client;
    std::size_t unread_to_server = 0, unread_to_client = 0;
    std::uint64_t sent_to_server = 0, sent_to_client = 0;  // every byte queued so far, for the quotas
    std::size_t reading_to_server = 0, reading_to_client = 0;  // the room of a receive waiting at that end
    bool client_closed = false, server_closed = false, disconnected = false;
    std::size_t client_sent = 0;
    std::size_t close_after = std::numeric_limits<std::size_t>::max();  // fault injection
};

struct FakePipe;
struct FakeInstance {
    FakePipe* pipe = nullptr;
    enum class State { listening, connected, disconnected } state = State::listening;
    std::shared_ptr<Connection> connection;
    std::size_t in_buffer = 0, out_buffer = 0;
    std::uint64_t listening_since = 0;  // FakeState::listen_order when it began listening
};

struct FakePipe {
    ServerOptions options;
    std::vector<FakeInstance*> instances;
    std::deque<std::uint64_t> waiters;  // clients waiting for a free instance, first come first served
    std::uint64_t next_waiter = 0;
};

struct FakeMailslot {
    std::deque<std::vector<std::byte>> queue;
    std::size_t queued_bytes = 0;
    std::size_t max_message_size = 0;
    std::size_t max_queued_bytes = 0, max_queued_messages = 0;
    Timeout read_timeout = Timeout::forever();
    std::size_t dropped = 0;
    std::uint64_t cancels = 0;
    // As the POSIX reader: room for one more while under both bounds.
    bool has_room() const { return queue.size() < max_queued_messages && queued_bytes < max_queued_bytes; }
    void push(std::span<const std::byte> message) {
        queue.emplace_back(message.begin(), message.end());
        queued_bytes += message.size();
    }
};

struct FakeHost {
    FakeState* network = nullptr;
    std::string name, domain;  // upper-cased
    std::map<std::string, FakePipe> pipes;         // by folded name
    std::map<std::string, FakeMailslot*> mailslots;  // by folded name
    std::optional<errc> fail_next_open;
    int drop_datagrams = 0;
    std::optional<std::size_t> close_after;
};

std::string upper(std::string s);

}  // namespace pipeslot::testing
