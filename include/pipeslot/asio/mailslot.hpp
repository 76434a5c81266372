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

class AsyncMailslot {
public:
    using executor_type = net::any_io_executor;

    AsyncMailslot(executor_type ex, Mailslot slot)
        : executor_(std::move(ex)), core_(std::make_unique<Core>(std::move(slot))) {
        std::error_code ec;
        if (core_->slot.is_open()) core_->slot.set_read_timeout(Timeout::none(), ec);
    }
    AsyncMailslot(AsyncMailslot&&) = default;
    AsyncMailslot& operator=(AsyncMailslot&&) = default;

    executor_type get_executor() const noexcept { return executor_; }
    Mailslot& mailslot() noexcept { return core_->slot; }  // info(), ...
    bool is_open() const noexcept { return core_->slot.is_open(); }

    // The next message whole; one larger than the buffer is
    // errc::buffer_too_small and stays. void(std::error_code, std::size_t).
    template <class Token>
    auto async_receive(std::span<std::byte> buffer, Token&& token) {
        return detail::async_retry<std::size_t>(
            executor_, core_->pending,
            [core = core_.get(), buffer](std::error_code& ec) -> std::optional<std::size_t> {
                const auto n = core->slot.receive(buffer, ec);
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
                auto message = core->slot.receive_message(ec);
                if (ec == errc::timed_out) return std::nullopt;
                return message;
            },
            source(), std::forward<Token>(token));
    }

    void cancel() { core_->pending.cancel_all(); }
    void close() {
        cancel();
        core_->slot.close();
    }

private:
    auto source() {
        return [core = core_.get()] { return core->slot.event_source(); };
    }
    struct Core {
        explicit Core(Mailslot s) : slot(std::move(s)) {}
        Mailslot slot;
        detail::PendingWaits pending;
    };
    executor_type executor_;
    std::unique_ptr<Core> core_;
};

class AsyncBroadcaster {
public:
    using executor_type = net::any_io_executor;

    AsyncBroadcaster(executor_type ex, Broadcaster broadcaster)
        : executor_(std::move(ex)), core_(std::make_unique<Core>(std::move(broadcaster))) {}
    AsyncBroadcaster(AsyncBroadcaster&&) = default;
    AsyncBroadcaster& operator=(AsyncBroadcaster&&) = default;

    executor_type get_executor() const noexcept { return executor_; }
    Broadcaster& broadcaster() noexcept { return core_->broadcaster; }

    // One message, sent once a local reader's queue has room for it (a
    // network send never waits). void(std::error_code).
    template <class Token>
    auto async_send(std::span<const std::byte> message, Token&& token) {
        return net::async_initiate<Token, void(std::error_code)>(
            [core = core_.get(), ex = executor_, message](auto handler) {
                detail::async_retry<int>(
                    ex, core->pending,
                    [core, message](std::error_code& ec) -> std::optional<int> {
                        core->broadcaster.send(message, Timeout::none(), ec);
                        if (ec == errc::timed_out) return std::nullopt;
                        return 0;
                    },
                    [] { return EventSource{}; },
                    detail::adapt(std::move(handler), ex, [](auto& h, std::error_code ec, int) { std::move(h)(ec); }));
            },
            token);
    }

    void cancel() { core_->pending.cancel_all(); }
    void close() {
        cancel();
        core_->broadcaster.close();
    }

private:
    struct Core {
        explicit Core(Broadcaster b) : broadcaster(std::move(b)) {}
        Broadcaster broadcaster;
        detail::PendingWaits pending;
    };
    executor_type executor_;
    std::unique_ptr<Core> core_;
};

}  // namespace pipeslot::async
