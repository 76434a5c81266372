// Named pipes on an Asio executor: a channel's receive, send, transact and a
// server instance's accept as asynchronous operations with completion tokens
// (callbacks, asio::use_awaitable, asio::deferred, asio::use_future).
//
// An AsyncChannel owns its MessageChannel and keeps it in WaitMode::nowait;
// its operations run on its executor (with a multi-threaded io_context, give
// it a strand). Each takes a cancellation slot; cancel() ends them all with
// errc::cancelled. Destroy it only once its operations have completed.
#pragma once

#include <pipeslot/asio/retry.hpp>
#include <pipeslot/ipc_system.hpp>
#include <pipeslot/message_channel.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace pipeslot::async {

template <class Channel>
class BasicAsyncChannel {
public:
    using executor_type = net::any_io_executor;

    BasicAsyncChannel(executor_type ex, Channel channel)
        : executor_(std::move(ex)), core_(std::make_unique<Core>(std::move(channel))) {
        std::error_code ec;
        if (core_->channel.is_open()) core_->channel.set_wait_mode(WaitMode::nowait, ec);
    }
    BasicAsyncChannel(BasicAsyncChannel&&) = default;
    BasicAsyncChannel& operator=(BasicAsyncChannel&&) = default;

    executor_type get_executor() const noexcept { return executor_; }
    Channel& channel() noexcept { return core_->channel; }  // the synchronous calls that never wait (peek, info, ...)
    bool is_open() const noexcept { return core_->channel.is_open(); }

    // Message read mode: one message; if it does not fit, its first part and
    // errc::more_data (the rest comes in the next receives). Byte read mode:
    // what is there. Completes with void(std::error_code, std::size_t).
    template <class Token>
    auto async_receive(std::span<std::byte> buffer, Token&& token) {
        return detail::async_retry<std::size_t>(
            executor_, core_->pending,
            [core = core_.get(), buffer, got = std::size_t{0}](std::error_code& ec) mutable {
                return core->receive_into(buffer, got, ec);
            },
            readable(), std::forward<Token>(token));
    }

    // The next message whole, up to max_size; a longer one is
    // errc::message_too_large and the channel goes on at the next message.
    // Completes with void(std::error_code, std::vector<std::byte>).
    template <class Token>
    auto async_receive_message(Token&& token, std::size_t max_size = default_max_message_size) {
        struct Gathered {
            std::vector<std::byte> bytes;
            bool too_large = false;
        };
        auto gathered = std::make_shared<Gathered>();
        return detail::async_retry<std::vector<std::byte>>(
            executor_, core_->pending,
            [core = core_.get(), gathered, max_size](std::error_code& ec) -> std::optional<std::vector<std::byte>> {
                for (;;) {
                    std::byte part[16384];
                    const auto n = core->channel.receive(part, Timeout::none(), ec);
                    if (ec == errc::no_data) return std::nullopt;
                    if (!gathered->too_large) {
                        if (gathered->bytes.size() + n > max_size) {
                            gathered->too_large = true;
                            gathered->bytes = {};
                        } else {
                            gathered->bytes.insert(gathered->bytes.end(), part, part + n);
                        }
                    }
                    if (ec == errc::more_data) continue;
                    if (!ec && gathered->too_large) ec = errc::message_too_large;
                    if (ec) return std::vector<std::byte>{};
                    return std::move(gathered->bytes);
                }
            },
            readable(), std::forward<Token>(token));
    }

    // One message (bytes, on a byte pipe), sent whole once the pipe's quota
    // has room for it. One larger than the quota, which no non-blocking
    // write can take, is sent by a thread of its own that waits as a
    // blocking send does (Win32 cannot: not_supported, until its overlapped
    // path). Completes with void(std::error_code, std::size_t).
    template <class Token>
    auto async_send(std::span<const std::byte> data, Token&& token) {
        return net::async_initiate<Token, void(std::error_code, std::size_t)>(
            [core = core_.get(), ex = executor_, data](auto handler) {
                if (data.size() > core->largest_at_once()) {
                    return core->call_blocking(ex, std::move(handler), [core, data](std::error_code& ec) {
                        return core->channel.send_waiting(data, Timeout::forever(), ec);
                    });
                }
                detail::async_retry<std::size_t>(
                    ex, core->pending,
                    [core, data](std::error_code& ec) -> std::optional<std::size_t> {
                        const auto n = core->channel.send(data, Timeout::none(), ec);
                        if (!ec && n == 0 && !data.empty()) return std::nullopt;  // no room yet
                        return n;
                    },
                    no_event(core), std::move(handler));
            },
            token);
    }

    // Several messages in order, each whole; completes with how many were sent.
    template <class Token>
    auto async_send_messages(std::span<const std::span<const std::byte>> messages, Token&& token) {
        return net::async_initiate<Token, void(std::error_code, std::size_t)>(
            [core = core_.get(), ex = executor_, messages](auto handler) {
                for (const auto& m : messages) {
                    if (m.size() <= core->largest_at_once()) continue;
                    return core->call_blocking(ex, std::move(handler), [core, messages](std::error_code& ec) {
                        std::size_t sent = 0;
                        while (sent < messages.size() && !ec) {
                            core->channel.send_waiting(messages[sent], Timeout::forever(), ec);
                            if (!ec) ++sent;
                        }
                        return sent;
                    });
                }
                auto sent = std::make_shared<std::size_t>(0);
                detail::async_retry<std::size_t>(
                    ex, core->pending,
                    [core, messages, sent](std::error_code& ec) -> std::optional<std::size_t> {
                        *sent += core->channel.send_messages(messages.subspan(*sent), Timeout::none(), ec);
                        if (!ec && *sent < messages.size()) return std::nullopt;
                        return *sent;
                    },
                    no_event(core), std::move(handler));
            },
            token);
    }

    // One request and its reply, as TransactNamedPipe: this end in message
    // read mode (else bad_pipe) with nothing unread (else pipe_busy). The
    // reply as async_receive gives it. void(std::error_code, std::size_t).
    template <class Token>
    auto async_transact(std::span<const std::byte> request, std::span<std::byte> reply, Token&& token) {
        auto sent = std::make_shared<bool>(false);
        return detail::async_retry<std::size_t>(
            executor_, core_->pending,
            [core = core_.get(), request, reply, sent, got = std::size_t{0}](std::error_code& ec) mutable
            -> std::optional<std::size_t> {
                if (!*sent) {
                    const auto info = core->channel.info(ec);
                    if (ec) return 0;
                    if (info.read_mode != ReadMode::message) return ec = errc::bad_pipe, 0;
                    if (core->channel.peek({}, ec).total_available > 0) return ec = errc::pipe_busy, 0;
                    if (ec) return 0;
                    const auto n = core->channel.send(request, Timeout::none(), ec);
                    if (ec) return 0;
                    if (n == 0 && !request.empty()) return std::nullopt;
                    *sent = true;
                }
                return core->receive_into(reply, got, ec);
            },
            readable(), std::forward<Token>(token));
    }

    // FlushFileBuffers: completes once the other end has read everything
    // sent (errc::broken_pipe if it closed first, not_connected if this
    // server end was disconnected). No system reports that as an event: it
    // waits on a thread of its own, cancellable. void(std::error_code).
    template <class Token>
    auto async_flush(Token&& token) {
        return net::async_initiate<Token, void(std::error_code)>(
            [core = core_.get(), ex = executor_](auto handler) {
                core->call_blocking(ex,
                                    detail::adapt(std::move(handler), ex,
                                                  [](auto& h, std::error_code ec, std::size_t) { std::move(h)(ec); }),
                                    [core](std::error_code& ec) {
                                        core->channel.flush(ec);
                                        return std::size_t{0};
                                    });
            },
            token);
    }

    // Ends every pending operation of this channel with errc::cancelled.
    void cancel() {
        core_->pending.cancel_all();
        if (core_->blocking > 0) core_->channel.cancel();
    }
    // A call on a thread of its own still under way: the channel closes when it is done.
    void close() {
        cancel();
        if (core_->blocking > 0) core_->close_when_idle = true;
        else core_->channel.close();
    }

protected:
    auto readable() {
        return [core = core_.get()] { return core->channel.event_source(ChannelEvent::readable); };
    }
    auto arrivals() {
        return [core = core_.get()] { return core->channel.event_source(ChannelEvent::client_arrived); };
    }

    // On the heap, so that moving the object leaves its pending operations' state in place.
    struct Core {
        explicit Core(Channel c) : channel(std::move(c)) {}
        Channel channel;
        detail::PendingWaits pending;
        int blocking = 0;  // calls on threads of their own (counted on the executor)
        bool close_when_idle = false;
        std::size_t at_once_limit = 0;

        // One message into `buffer`, `got` bytes of it already there. A
        // message still arriving comes from a non-blocking read in parts,
        // each with more_data; as Windows, more_data only once the buffer is
        // full, else the rest is waited for.
        std::optional<std::size_t> receive_into(std::span<std::byte> buffer, std::size_t& got, std::error_code& ec) {
            const auto n = channel.receive(buffer.subspan(got), Timeout::none(), ec);
            got += n;
            if (ec == errc::no_data) return std::nullopt;
            if (ec == errc::more_data && got < buffer.size()) {
                ec.clear();
                return std::nullopt;
            }
            return got;
        }

        // The largest message a non-blocking write can ever take: the
        // reading end's quota (within what a socket buffer holds).
        std::size_t largest_at_once() {
            if (at_once_limit == 0) {
                std::error_code ec;
                const auto info = channel.info(ec);
                const auto quota = info.is_server ? info.out_buffer_size : info.in_buffer_size;
                at_once_limit = std::min<std::size_t>(ec || quota == 0 ? 65536 : quota, 128 * 1024);
            }
            return at_once_limit;
        }

        template <class Handler, class Work>
        void call_blocking(const net::any_io_executor& ex, Handler handler, Work work) {
            ++blocking;
            detail::run_blocking<std::size_t>(
                ex,
                detail::adapt(std::move(handler), ex,
                              [this](auto& h, std::error_code ec, std::size_t n) {
                                  if (--blocking == 0 && close_when_idle) channel.close();
                                  std::move(h)(ec, n);
                              }),
                std::move(work), [this] { channel.cancel(); });
        }
    };
    // Room in the quota has no descriptor: the fake says when it changes, else it is polled.
    static auto no_event(Core* core) {
        return [core] {
            auto source = core->channel.event_source(ChannelEvent::readable);
            source.descriptor = invalid_native_handle;
            return source;
        };
    }
    executor_type executor_;
    std::unique_ptr<Core> core_;
};

using AsyncChannel = BasicAsyncChannel<MessageChannel>;

class AsyncInstance : public BasicAsyncChannel<PipeInstance> {
public:
    using BasicAsyncChannel::BasicAsyncChannel;

    // Waits for a client (ConnectNamedPipe): one that came before the call
    // completes with errc::already_connected, one that came and already
    // closed with errc::no_data, as Windows reports them; either way the
    // instance has that client. void(std::error_code).
    template <class Token>
    auto async_accept(Token&& token) {
        return net::async_initiate<Token, void(std::error_code)>(
            [core = core_.get(), ex = executor_, arrived = arrivals()](auto handler) {
                detail::async_retry<int>(
                    ex, core->pending,
                    [core, waited = false](std::error_code& ec) mutable -> std::optional<int> {
                        core->channel.accept(Timeout::none(), ec);
                        if (ec == errc::pipe_listening) return waited = true, std::nullopt;
                        // A client that came while this accept waited came during the call:
                        // Windows completes a pending ConnectNamedPipe with success.
                        if (waited && (ec == errc::already_connected || ec == errc::no_data)) ec.clear();
                        return 0;
                    },
                    arrived, detail::adapt(std::move(handler), ex, [](auto& h, std::error_code ec, int) {
                        std::move(h)(ec);
                    }));
            },
            token);
    }
};

// Opens `name` (MessageChannel::open), waiting up to options.wait for a free
// instance without blocking the executor. void(std::error_code, AsyncChannel).
template <class Token>
auto async_open(net::any_io_executor ex, IpcSystem& system, std::string name, ClientOptions options,
                Token&& token) {
    struct State {
        detail::PendingWaits pending;
        std::optional<std::chrono::steady_clock::time_point> until;
    };
    auto state = std::make_shared<State>();
    if (!options.wait.is_forever()) state->until = std::chrono::steady_clock::now() + options.wait.value();
    options.wait = Timeout::none();
    return net::async_initiate<Token, void(std::error_code, AsyncChannel)>(
        [ex, state, &system, name = std::move(name), options](auto handler) {
            detail::async_retry<std::optional<MessageChannel>>(
                ex, state->pending,
                [state, &system, name, options](std::error_code& ec) -> std::optional<std::optional<MessageChannel>> {
                    auto channel = system.open_channel(name, options, ec);
                    if (ec == errc::pipe_busy && (!state->until || std::chrono::steady_clock::now() < *state->until))
                        return std::nullopt;
                    if (ec) return std::optional<MessageChannel>();
                    return std::optional<MessageChannel>(std::move(channel));
                },
                [] { return EventSource{}; },
                detail::adapt(std::move(handler), ex,
                              [ex, state](auto& h, std::error_code ec, std::optional<MessageChannel> channel) {
                                  std::move(h)(ec, AsyncChannel(ex, channel ? std::move(*channel) : MessageChannel()));
                              }));
        },
        token);
}

}  // namespace pipeslot::async
