// A named-pipe server on one executor: N instances kept listening, any number
// of connections, a handler or a coroutine per connection, a clean stop.
// Where PipeServer spends a thread per instance, this serves thousands of
// clients from one thread.
//
// As each instance accepts a client, another is created, so N clients can
// always connect at once; with options.max_instances reached, the next one
// is created when a connection ends. A connection's instance is closed once
// its handler lets it go (the client can still read what was sent).
#pragma once

#include <pipeslot/asio/channel.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace pipeslot::async {

namespace detail {

struct ServerState;

struct ServerConnection {
    ServerConnection(AsyncInstance i, std::weak_ptr<ServerState> s) : instance(std::move(i)), server(std::move(s)) {}
    ~ServerConnection();
    AsyncInstance instance;
    net::cancellation_signal stop_signal;  // a coroutine's: stop() ends whatever it awaits
    std::weak_ptr<ServerState> server;
};

struct ServerState : std::enable_shared_from_this<ServerState> {
    ServerState(net::any_io_executor ex, IpcSystem& s) : executor(ex), system(&s), retry(ex) {}

    net::any_io_executor executor;
    IpcSystem* system;
    std::string name;
    ServerOptions options;
    std::size_t ready = 1;
    std::function<void(std::shared_ptr<ServerConnection>)> on_connection;
    std::vector<std::shared_ptr<ServerConnection>> listening;
    std::vector<std::weak_ptr<ServerConnection>> connected;
    net::steady_timer retry;
    bool retry_pending = false;
    std::chrono::milliseconds retry_pause{1};
    bool stopped = false;

    // Creates instances until `ready` listen. The first error is returned
    // (start() reports it); later ones are tried again, less often each time.
    std::error_code keep_ready() {
        while (!stopped && listening.size() < ready) {
            std::error_code ec;
            auto instance = system->create_instance(name, options, ec);
            if (ec) {
                try_again_later();
                return ec;
            }
            options.first_instance = false;
            auto connection = std::make_shared<ServerConnection>(AsyncInstance(executor, std::move(instance)), weak_from_this());
            listening.push_back(connection);
            connection->instance.async_accept(
                [self = shared_from_this(), connection](std::error_code accept_ec) { self->accepted(connection, accept_ec); });
        }
        retry_pause = std::chrono::milliseconds(1);
        return {};
    }

    void try_again_later() {
        if (retry_pending || stopped) return;
        retry_pending = true;
        retry.expires_after(retry_pause);
        retry_pause = std::min(retry_pause * 2, std::chrono::milliseconds(100));
        retry.async_wait([weak = weak_from_this()](std::error_code ec) {
            if (auto self = weak.lock()) {
                self->retry_pending = false;
                if (!ec) self->keep_ready();
            }
        });
    }

    void accepted(const std::shared_ptr<ServerConnection>& connection, std::error_code ec) {
        std::erase(listening, connection);
        if (stopped) return;
        // already_connected: the client came before the accept; no_data: it
        // came and left (the instance is dropped); anything else: the
        // instance is dropped and another tried a little later.
        if (ec && ec != errc::already_connected) {
            if (ec == errc::no_data || ec == errc::cancelled) keep_ready();
            else try_again_later();
            return;
        }
        std::erase_if(connected, [](const std::weak_ptr<ServerConnection>& c) { return c.expired(); });
        connected.push_back(connection);
        keep_ready();
        on_connection(connection);
    }

    void stop() {
        if (stopped) return;
        stopped = true;
        retry.cancel();
        for (auto& l : listening) l->instance.close();  // its accept completes cancelled
        listening.clear();
        for (auto& c : connected)
            if (auto connection = c.lock()) {
                connection->instance.cancel();
                connection->stop_signal.emit(net::cancellation_type::terminal);
            }
        connected.clear();
    }
};

// A connection that ends makes room for another instance (options.max_instances).
inline ServerConnection::~ServerConnection() {
    if (auto s = server.lock(); s && !s->stopped && s->listening.size() < s->ready)
        net::post(s->executor, [weak = server] {
            if (auto self = weak.lock()) self->keep_ready();
        });
}

}  // namespace detail

class AsyncServer {
public:
    // Called on the executor with each connected client. The instance stays
    // open as long as the handler keeps it (e.g. in its operations' handlers).
    using ConnectionHandler = std::function<void(std::shared_ptr<AsyncInstance>)>;
#if defined(ASIO_HAS_CO_AWAIT) || defined(BOOST_ASIO_HAS_CO_AWAIT)
    // Run as a coroutine per connection; the instance is closed when it
    // returns. An exception ends that connection only.
    using CoroutineHandler = std::function<net::awaitable<void>(AsyncInstance&)>;
#endif

    AsyncServer() = default;
    AsyncServer(AsyncServer&&) noexcept = default;
    AsyncServer& operator=(AsyncServer&& other) noexcept {
        if (this != &other) {
            stop();
            state_ = std::move(other.state_);
        }
        return *this;
    }
    ~AsyncServer() { stop(); }

    // Creates the `ready` instances first (so their errors come back here),
    // then serves on `ex` until stop(). Call it on the executor, or before
    // the executor runs; destroy the server before its io_context.
    static AsyncServer start(net::any_io_executor ex, std::string_view name, const ServerOptions& options,
                             std::size_t ready, ConnectionHandler handler, std::error_code& ec,
                             IpcSystem& system = native_ipc()) {
        return start_with(std::move(ex), name, options, ready,
                          [handler = std::move(handler)](std::shared_ptr<detail::ServerConnection> c) {
                              handler(std::shared_ptr<AsyncInstance>(c, &c->instance));
                          },
                          ec, system);
    }
#if defined(ASIO_HAS_CO_AWAIT) || defined(BOOST_ASIO_HAS_CO_AWAIT)
    static AsyncServer start(net::any_io_executor ex, std::string_view name, const ServerOptions& options,
                             std::size_t ready, CoroutineHandler handler, std::error_code& ec,
                             IpcSystem& system = native_ipc()) {
        return start_with(ex, name, options, ready,
                          [ex, handler = std::move(handler)](std::shared_ptr<detail::ServerConnection> c) {
                              auto& signal = c->stop_signal;
                              net::co_spawn(ex, serve(handler, c),
                                            net::bind_cancellation_slot(signal.slot(), [c](std::exception_ptr) {}));
                          },
                          ec, system);
    }
#endif

    // Stops listening (the name is gone once no connection holds an
    // instance) and ends every pending operation of every connection with
    // errc::cancelled; a coroutine's other waits get a terminal cancellation.
    // Runs on the executor: call it from anywhere while the executor lives.
    void stop() {
        if (!state_) return;
        const auto executor = state_->executor;
        net::dispatch(executor, [state = std::move(state_)] { state->stop(); });
    }
    bool running() const noexcept { return state_ != nullptr; }

private:
    template <class OnConnection>
    static AsyncServer start_with(net::any_io_executor ex, std::string_view name, const ServerOptions& options,
                                  std::size_t ready, OnConnection on_connection, std::error_code& ec,
                                  IpcSystem& system) {
        auto state = std::make_shared<detail::ServerState>(ex, system);
        state->name = std::string(name);
        state->options = options;
        state->ready = std::max<std::size_t>(ready, 1);
        state->on_connection = std::move(on_connection);
        AsyncServer server;
        ec = state->keep_ready();
        if (ec) {
            state->stop();
            return server;
        }
        server.state_ = std::move(state);
        return server;
    }

#if defined(ASIO_HAS_CO_AWAIT) || defined(BOOST_ASIO_HAS_CO_AWAIT)
    static net::awaitable<void> serve(CoroutineHandler handler, std::shared_ptr<detail::ServerConnection> c) {
        co_await handler(c->instance);
    }
#endif

    std::shared_ptr<detail::ServerState> state_;
};

}  // namespace pipeslot::async
