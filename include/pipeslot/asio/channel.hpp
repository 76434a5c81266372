// Named pipes on an Asio executor: a channel's receive, send, transact and a
// server instance's accept as asynchronous operations with completion tokens
// (callbacks, asio::use_awaitable, asio::deferred, asio::use_future).
//
// An AsyncChannel owns its MessageChannel. On Windows each operation is the
// overlapped call itself on the io_context's completion port, the channel in
// wait mode; elsewhere (and on the fake) the channel is in WaitMode::nowait
// and an operation is tried again when its EventSource says so. Operations
// run on the executor (with a multi-threaded io_context, give it a strand).
// Each takes a cancellation slot; cancel() ends them all with
// errc::cancelled. Destroy it only once its operations have completed.
#pragma once

#include <pipeslot/asio/overlapped.hpp>
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
        if (!core_->channel.is_open()) return;
        std::error_code ec;
#ifdef PIPESLOT_ASIO_OVERLAPPED
        core_->overlapped = detail::bind_to_port(executor_, core_->channel.event_source(ChannelEvent::readable));
        if (core_->overlapped) {
            core_->byte_pipe = core_->channel.info(ec).type == PipeType::byte;
            core_->channel.set_wait_mode(WaitMode::wait, ec);
            return;
        }
#endif
        core_->channel.set_wait_mode(WaitMode::nowait, ec);
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
        return net::async_initiate<Token, void(std::error_code, std::size_t)>(
            [core = core_.get(), ex = executor_, buffer, readable = readable()](auto handler) {
#ifdef PIPESLOT_ASIO_OVERLAPPED
                if (core->overlapped) return core->read(ex, buffer, std::move(handler));
#endif
                detail::async_retry<std::size_t>(
                    ex, core->pending,
                    [core, buffer, got = std::size_t{0}](std::error_code& ec) mutable {
                        return core->receive_into(buffer, got, ec);
                    },
                    readable, std::move(handler));
            },
            token);
    }

    // The next message whole, up to max_size; a longer one is
    // errc::message_too_large and the channel goes on at the next message.
    // Completes with void(std::error_code, std::vector<std::byte>).
    template <class Token>
    auto async_receive_message(Token&& token, std::size_t max_size = default_max_message_size) {
        return net::async_initiate<Token, void(std::error_code, std::vector<std::byte>)>(
            [core = core_.get(), ex = executor_, max_size, readable = readable()](auto handler) {
#ifdef PIPESLOT_ASIO_OVERLAPPED
                if (core->overlapped)
                    return core->gather(ex, std::make_shared<typename Core::Gathered>(), max_size, std::move(handler));
#endif
                core->gather_parts(ex, max_size, readable, std::move(handler));
            },
            token);
    }

    // One message (bytes, on a byte pipe), sent whole once the pipe's quota
    // has room for it: on Windows the WriteFile waits for the reader as a
    // blocking one does; elsewhere one larger than the quota, which no
    // non-blocking write can take, is sent by a thread of its own that waits
    // so. Completes with void(std::error_code, std::size_t).
    template <class Token>
    auto async_send(std::span<const std::byte> data, Token&& token) {
        return net::async_initiate<Token, void(std::error_code, std::size_t)>(
            [core = core_.get(), ex = executor_, data](auto handler) {
#ifdef PIPESLOT_ASIO_OVERLAPPED
                if (core->overlapped) return core->write(ex, data, std::move(handler));
#endif
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
#ifdef PIPESLOT_ASIO_OVERLAPPED
                if (core->overlapped) return core->write_each(ex, messages, 0, std::move(handler));
#endif
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
        return net::async_initiate<Token, void(std::error_code, std::size_t)>(
            [core = core_.get(), ex = executor_, request, reply, readable = readable()](auto handler) {
#ifdef PIPESLOT_ASIO_OVERLAPPED
                if (core->overlapped) {
                    const HANDLE h = core->overlapped.handle;
                    return detail::start_overlapped(
                        ex, core->overlapped, OverlappedCall::transact,
                        [h, request, reply](OVERLAPPED* ov) {
                            return TransactNamedPipe(h, const_cast<std::byte*>(request.data()),
                                                     static_cast<DWORD>(request.size()), reply.data(),
                                                     static_cast<DWORD>(std::min<std::size_t>(reply.size(), MAXDWORD)),
                                                     nullptr, ov);
                        },
                        std::move(handler));
                }
#endif
                auto sent = std::make_shared<bool>(false);
                detail::async_retry<std::size_t>(
                    ex, core->pending,
                    [core, request, reply, sent, got = std::size_t{0}](std::error_code& ec) mutable
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
                    readable, std::move(handler));
            },
            token);
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
        if (core_->blocking > 0 || core_->overlapped_calls()) core_->channel.cancel();
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
#ifdef PIPESLOT_ASIO_OVERLAPPED
        detail::OverlappedHandle overlapped;
        bool byte_pipe = false;
        bool overlapped_calls() const noexcept { return static_cast<bool>(overlapped); }

        template <class Handler>
        void read(const net::any_io_executor& ex, std::span<std::byte> buffer, Handler handler) {
            const HANDLE h = overlapped.handle;
            const auto size = static_cast<DWORD>(std::min<std::size_t>(buffer.size(), MAXDWORD));
            detail::start_overlapped(
                ex, overlapped, OverlappedCall::read,
                [h, buffer, size](OVERLAPPED* ov) { return ReadFile(h, buffer.data(), size, nullptr, ov); },
                detail::adapt(std::move(handler), ex, [this, ex, buffer](auto& next, std::error_code ec, std::size_t n) {
                    // Byte read mode passes over a zero-length message, as the blocking receive does.
                    if (!ec && n == 0 && !buffer.empty() && reads_bytes()) return read(ex, buffer, std::move(next));
                    std::move(next)(ec, n);
                }));
        }
        bool reads_bytes() {
            std::error_code ec;
            return channel.info(ec).read_mode == ReadMode::byte;
        }

        struct Gathered {
            std::vector<std::byte> bytes;
            std::size_t have = 0;
            bool too_large = false;
        };
        // The next message into `g`, read in parts that grow with it; one
        // over max_size is read to its end and forgotten.
        template <class Handler>
        void gather(const net::any_io_executor& ex, std::shared_ptr<Gathered> g, std::size_t max_size, Handler handler) {
            std::span<std::byte> into;
            if (g->too_large) {
                g->bytes.resize(65536);
                into = g->bytes;
            } else {
                const auto want = std::min(max_size - g->have, std::max<std::size_t>(16384, g->have));
                g->bytes.resize(g->have + want);
                into = std::span(g->bytes).subspan(g->have);
            }
            read(ex, into, detail::adapt(std::move(handler), ex, [this, ex, g, max_size](auto& next, std::error_code ec, std::size_t n) {
                if (!g->too_large) g->have += n;
                if (ec == errc::more_data) {
                    if (g->have >= max_size) g->too_large = true;
                    return gather(ex, g, max_size, std::move(next));
                }
                if (!ec && g->too_large) ec = errc::message_too_large;
                if (ec) return std::move(next)(ec, std::vector<std::byte>{});
                g->bytes.resize(g->have);
                std::move(next)(ec, std::move(g->bytes));
            }));
        }

        template <class Handler>
        void write(const net::any_io_executor& ex, std::span<const std::byte> data, Handler handler) {
            // As MessageChannel::send: too large for any pipe, or nothing to write on a byte pipe.
            if (data.size() > max_message_size || (data.empty() && byte_pipe)) {
                const std::error_code ec = data.empty() ? std::error_code() : make_error_code(errc::message_too_large);
                return net::post(ex, [handler = std::move(handler), ec]() mutable { std::move(handler)(ec, std::size_t{0}); });
            }
            const HANDLE h = overlapped.handle;
            detail::start_overlapped(
                ex, overlapped, OverlappedCall::write,
                [h, data](OVERLAPPED* ov) {
                    return WriteFile(h, data.data(), static_cast<DWORD>(data.size()), nullptr, ov);
                },
                std::move(handler));
        }
        // messages[sent...], one WriteFile each; completes with how many went whole.
        template <class Handler>
        void write_each(const net::any_io_executor& ex, std::span<const std::span<const std::byte>> messages,
                        std::size_t sent, Handler handler) {
            for (const auto& m : sent == 0 ? messages : messages.first(0))
                if (m.size() > max_message_size)  // checked before any is sent, as send_messages does
                    return write(ex, m, detail::adapt(std::move(handler), ex, [](auto& next, std::error_code ec, std::size_t) {
                        std::move(next)(ec, std::size_t{0});
                    }));
            if (sent == messages.size())
                return net::post(ex, [handler = std::move(handler), sent]() mutable { std::move(handler)(std::error_code(), sent); });
            write(ex, messages[sent], detail::adapt(std::move(handler), ex, [this, ex, messages, sent](auto& next, std::error_code ec, std::size_t) {
                if (ec) return std::move(next)(ec, sent);
                write_each(ex, messages, sent + 1, std::move(next));
            }));
        }
#else
        bool overlapped_calls() const noexcept { return false; }
#endif

        // The next message whole, from non-blocking reads of what is there.
        template <class Handler, class Source>
        void gather_parts(const net::any_io_executor& ex, std::size_t max_size, Source readable, Handler handler) {
            struct Gathered {
                std::vector<std::byte> bytes;
                bool too_large = false;
            };
            auto gathered = std::make_shared<Gathered>();
            detail::async_retry<std::vector<std::byte>>(
                ex, pending,
                [core = this, gathered, max_size](std::error_code& ec) -> std::optional<std::vector<std::byte>> {
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
                    readable, std::move(handler));
        }



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
#ifdef PIPESLOT_ASIO_OVERLAPPED
                if (core->overlapped) {
                    const HANDLE h = core->overlapped.handle;
                    return detail::start_overlapped(
                        ex, core->overlapped, OverlappedCall::connect,
                        [h](OVERLAPPED* ov) { return ConnectNamedPipe(h, ov); },
                        detail::adapt(std::move(handler), ex,
                                      [](auto& next, std::error_code ec, std::size_t) { std::move(next)(ec); }));
                }
#endif
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
