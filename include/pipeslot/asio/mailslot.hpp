// Mailslots on an Asio executor: a reader's receive, a broadcaster's send.
// The reader is kept at a read timeout of none; each operation takes a
// cancellation slot, and cancel() ends them all with errc::cancelled.
#pragma once

#include <pipeslot/asio/retry.hpp>
#include <pipeslot/mailslot.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <vector>

namespace pipeslot::async {

class AsyncMailslot : public detail::AsyncObject<Mailslot> {
public:
    AsyncMailslot(executor_type ex, Mailslot slot) : AsyncObject(std::move(ex), std::move(slot)) {
        std::error_code ec;
        if (core_->object.is_open()) core_->object.set_read_timeout(Timeout::none(), ec);
    }

    Mailslot& mailslot() noexcept { return core_->object; }  // info(), ...
    bool is_open() const noexcept { return core_->object.is_open(); }

    // The next message whole; one larger than the buffer is
    // errc::buffer_too_small and stays. void(std::error_code, std::size_t).
    template <class Token>
    auto async_receive(std::span<std::byte> buffer, Token&& token) {
        return detail::async_retry<std::size_t>(
            executor_, core_->pending,
            [core = core_.get(), buffer](std::error_code& ec) -> std::optional<std::size_t> {
                const auto n = core->object.receive(buffer, ec);
                if (ec == errc::timed_out) return std::nullopt;
                return n;
            },
            source(), std::forward<Token>(token));
    }

    // The next message, whatever its size. void(std::error_code, std::vector<std::byte>).
    template <class Token>
    auto async_receive_message(Token&& token) {
        return detail::async_retry<std::vector<std::byte>>(
            executor_, core_->pending,
            [core = core_.get()](std::error_code& ec) -> std::optional<std::vector<std::byte>> {
                auto message = core->object.receive_message(ec);
                if (ec == errc::timed_out) return std::nullopt;
                return message;
            },
            source(), std::forward<Token>(token));
    }

    void close() {
        cancel();
        core_->object.close();
    }

private:
    auto source() {
        return [core = core_.get()] { return core->object.event_source(); };
    }
};

class AsyncBroadcaster : public detail::AsyncObject<Broadcaster> {
public:
    AsyncBroadcaster(executor_type ex, Broadcaster broadcaster) : AsyncObject(std::move(ex), std::move(broadcaster)) {}

    Broadcaster& broadcaster() noexcept { return core_->object; }

    // One message, sent once a local reader's queue has room for it (a
    // network send never waits). void(std::error_code).
    template <class Token>
    auto async_send(std::span<const std::byte> message, Token&& token) {
        return net::async_initiate<Token, void(std::error_code)>(
            [core = core_.get(), ex = executor_, message](auto handler) {
                detail::async_retry<int>(
                    ex, core->pending,
                    [core, message](std::error_code& ec) -> std::optional<int> {
                        core->object.send(message, Timeout::none(), ec);
                        if (ec == errc::timed_out) return std::nullopt;
                        return 0;
                    },
                    [] { return EventSource{}; },
                    detail::adapt(std::move(handler), ex, [](auto& h, std::error_code ec, int) { std::move(h)(ec); }));
            },
            token);
    }

    void close() {
        cancel();
        core_->object.close();
    }
};

}  // namespace pipeslot::async
