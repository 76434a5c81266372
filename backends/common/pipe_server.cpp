#include "cancel_until.hpp"
#include "native_channel.hpp"
#include "platform.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/pipe_server.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

namespace pipeslot {

struct PipeServer::State {
    std::vector<PipeInstance> instances;
    std::vector<std::thread> threads;
    platform::AcceptGroupPtr group;  // null: a thread per instance
    ConnectionHandler handler;
    std::atomic<bool> stopping{false};
    std::mutex mutex;
    std::condition_variable finished_cv;
    std::size_t finished = 0;

    // Serves the client that `instance` has, if it has one (`ec`: what
    // accept() said), then disconnects it.
    void serve_client(PipeInstance& instance, std::error_code ec) {
        // A client that connected before accept() (already_connected), or
        // that connected and closed again (no_data: what it sent can still be read), is served.
        if (ec && ec != errc::already_connected && ec != errc::no_data) return;
        if (!stopping) handler(instance);
        // Windows' server pattern: what was sent is read before the
        // disconnect discards it (a stop's cancel ends the wait).
        instance.flush(ec);
        instance.disconnect(ec);
    }

    // A thread per instance, waiting in its accept().
    void serve(PipeInstance& instance) {
        while (!stopping) {
            std::error_code ec;
            instance.accept(Timeout::forever(), ec);
            serve_client(instance, ec);  // an error here is a stop's cancel
        }
        finish();
    }

    // A thread of the pool, serving whichever instance the group reports.
    void serve_group() {
        for (;;) {
            std::error_code ec;
            const std::size_t i = platform::wait_any(*group, ec);
            if (i >= instances.size() || stopping) break;
            // The group reported its doorbell: the client is there (or the
            // instance listens again after a spurious ring, and is re-armed).
            for (;;) {
                instances[i].accept(Timeout::none(), ec);
                if (ec && ec != errc::already_connected && ec != errc::no_data) break;
                serve_client(instances[i], ec);
                if (stopping) break;
                // The next accept() listens again; a client the broker hands
                // over at once is served without a trip through the group.
            }
            if (stopping) break;
            platform::rearm(*group, i);
        }
        finish();
    }

    void finish() {
        std::lock_guard lock(mutex);
        ++finished;
        finished_cv.notify_all();
    }
};

PipeServer::PipeServer() = default;
PipeServer::PipeServer(PipeServer&&) noexcept = default;
PipeServer& PipeServer::operator=(PipeServer&& other) noexcept {
    if (this != &other) {
        stop();
        state_ = std::move(other.state_);
    }
    return *this;
}
PipeServer::~PipeServer() { stop(); }

bool PipeServer::running() const noexcept { return state_ && !state_->stopping; }

PipeServer PipeServer::start(std::string_view name, const ServerOptions& options, std::size_t instances,
                             ConnectionHandler handler, std::error_code& ec, IpcSystem& system) {
    ec.clear();
    if (instances == 0 || !handler) {
        ec = errc::invalid_argument;
        return {};
    }
    auto state = std::make_unique<State>();
    state->handler = std::move(handler);
    for (std::size_t i = 0; i < instances; ++i) {
        state->instances.push_back(system.create_instance(name, options, ec));
        if (ec) return {};
    }
    std::vector<platform::Channel*> native;
    for (auto& instance : state->instances) native.push_back(detail::native_channel(instance.instance()));
    if (std::find(native.begin(), native.end(), nullptr) == native.end()) {
        state->group = platform::make_accept_group(native, ec);
        if (ec) return {};
    }
    PipeServer server;
    server.state_ = std::move(state);
    State* s = server.state_.get();
    for (auto& instance : s->instances) {
        if (s->group) s->threads.emplace_back([s] { s->serve_group(); });
        else s->threads.emplace_back([s, &instance] { s->serve(instance); });
    }
    return server;
}

PipeServer PipeServer::start(std::string_view name, const ServerOptions& options, std::size_t instances,
                             RequestHandler handler, std::error_code& ec, IpcSystem& system) {
    if (!handler) {
        ec = errc::invalid_argument;
        return {};
    }
    return start(
        name, options, instances,
        ConnectionHandler([handler = std::move(handler)](PipeInstance& client) {
            for (;;) {
                std::error_code io;
                const auto request = client.receive_message(Timeout::forever(), io);
                if (io) return;  // the client left, or the server is stopping
                const auto reply = handler(request);
                client.send(reply, Timeout::forever(), io);
                if (io) return;
            }
        }),
        ec, system);
}

void PipeServer::stop() noexcept {
    if (!state_) return;
    State& s = *state_;
    s.stopping = true;
    std::unique_lock lock(s.mutex);
    detail::cancel_until(
        lock, s.finished_cv, [&] { return s.finished == s.threads.size(); },
        [&] {
            if (s.group) platform::stop(*s.group);
            for (auto& instance : s.instances) instance.cancel();
        });
    lock.unlock();
    for (auto& t : s.threads) t.join();
    state_.reset();
}

}  // namespace pipeslot
