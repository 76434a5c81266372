// The one mechanism under every asynchronous operation of pipeslot/asio/:
// try the channel's operation in WaitMode::nowait; when it finds nothing to
// do, wait for the channel's EventSource (a descriptor on the reactor, the
// fake's change notice, or else a short pause) and try again. The wait takes
// Asio's per-operation cancellation, so one pending receive is cancelled
// without touching a pending send.
#pragma once

#if defined(PIPESLOT_BOOST_ASIO)
#include <boost/asio.hpp>
#define PIPESLOT_ASIO_NAMESPACE boost::asio
#else
#include <asio.hpp>
#define PIPESLOT_ASIO_NAMESPACE asio
#endif

#include <pipeslot/error.hpp>
#include <pipeslot/event_source.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

namespace pipeslot::async {

namespace net = ::PIPESLOT_ASIO_NAMESPACE;

namespace detail {

// What cancel() reaches: every wait an object's operations have pending.
class PendingWaits {
public:
    struct Wait {
        explicit Wait(const net::any_io_executor& ex) : timer(ex) {}
        net::steady_timer timer;
#if defined(ASIO_HAS_POSIX_STREAM_DESCRIPTOR) || defined(BOOST_ASIO_HAS_POSIX_STREAM_DESCRIPTOR)
        std::optional<net::posix::stream_descriptor> descriptor;
#endif
        // Releasing (which cancels) rather than cancelling alone: the owner may
        // close the channel next, and a reactor registration left on a closed
        // number would later be removed from whatever reuses it.
        void stop() {
            timer.cancel();
            release_descriptor();
        }
        // The descriptor is the channel's: let it go without closing it.
        void release_descriptor() {
#if defined(ASIO_HAS_POSIX_STREAM_DESCRIPTOR) || defined(BOOST_ASIO_HAS_POSIX_STREAM_DESCRIPTOR)
            if (descriptor) {
                descriptor->release();
                descriptor.reset();
            }
#endif
        }
        ~Wait() { release_descriptor(); }
    };

#if defined(ASIO_HAS_POSIX_STREAM_DESCRIPTOR) || defined(BOOST_ASIO_HAS_POSIX_STREAM_DESCRIPTOR)
    // A channel's descriptor, registered with the reactor from one wait to
    // the next (two system calls fewer a wait) for as long as the channel,
    // told before it closes it, has not.
    struct Registration {
        explicit Registration(const net::any_io_executor& ex) : descriptor(ex) {}
        net::posix::stream_descriptor descriptor;
        int number = -1;
        void let_go() {  // while the number is still the channel's
            if (number < 0) return;
            descriptor.release();  // its waits complete (operation_aborted) and look again
            number = -1;
        }
        ~Registration() { let_go(); }
    };
    // The registered descriptor to wait on for `source`, or nullptr.
    net::posix::stream_descriptor* registered(const net::any_io_executor& ex, const EventSource& source) {
        const int fd = static_cast<int>(source.descriptor);
        if (!registration_) registration_ = std::make_shared<Registration>(ex);
        auto& r = *registration_;
        if (r.number == fd) return &r.descriptor;
        r.let_go();
        std::error_code ec;
        r.descriptor.assign(fd, ec);
        if (ec) return nullptr;
        r.number = fd;
        source.notify_before_close([registration = std::weak_ptr<Registration>(registration_)] {
            if (auto r = registration.lock()) r->let_go();
        });
        return &r.descriptor;
    }
#endif

    std::uint64_t generation() const noexcept { return cancels_; }
    std::shared_ptr<Wait> make(const net::any_io_executor& ex) {
        auto wait = std::make_shared<Wait>(ex);
        std::erase_if(waits_, [](const std::weak_ptr<Wait>& w) { return w.expired(); });
        waits_.push_back(wait);
        return wait;
    }
    void cancel_all() {
        ++cancels_;
        for (auto& w : waits_)
            if (auto wait = w.lock()) wait->stop();
#if defined(ASIO_HAS_POSIX_STREAM_DESCRIPTOR) || defined(BOOST_ASIO_HAS_POSIX_STREAM_DESCRIPTOR)
        if (registration_ && registration_->number >= 0) registration_->descriptor.cancel();
#endif
    }

private:
#if defined(ASIO_HAS_POSIX_STREAM_DESCRIPTOR) || defined(BOOST_ASIO_HAS_POSIX_STREAM_DESCRIPTOR)
    std::shared_ptr<Registration> registration_;  // the channel's call before closing holds it weakly
#endif
    std::uint64_t cancels_ = 0;
    std::vector<std::weak_ptr<Wait>> waits_;
};

// What an asynchronous wrapper of one object holds: its executor, and on the
// heap (so that moving the wrapper leaves pending operations' state in
// place) the object and its operations' waits.
template <class T>
class AsyncObject {
public:
    using executor_type = net::any_io_executor;
    executor_type get_executor() const noexcept { return executor_; }
    // Ends every pending operation of this object with errc::cancelled.
    void cancel() { core_->pending.cancel_all(); }

protected:
    AsyncObject(executor_type ex, T object) : executor_(std::move(ex)), core_(std::make_unique<Core>(std::move(object))) {}
    struct Core {
        explicit Core(T o) : object(std::move(o)) {}
        T object;
        PendingWaits pending;
    };
    executor_type executor_;
    std::unique_ptr<Core> core_;
};

// `attempt(ec)` returns the result, or nullopt while there is nothing to do
// yet; `source()` says what to wait on then. Completes with the result, or
// errc::cancelled (a cancellation slot's request or the owner's cancel()).
template <class Result, class Attempt, class Source>
class RetryOp {
public:
    RetryOp(net::any_io_executor ex, PendingWaits& pending, Attempt attempt, Source source)
        : executor_(std::move(ex)), pending_(&pending), generation_(pending.generation()),
          attempt_(std::move(attempt)), source_(std::move(source)) {}

    template <class Self>
    void operator()(Self& self, std::error_code = {}) {
        if (finished_) return self.complete(ec_, std::move(*result_));
        if (waited_) {
            if (wait_) wait_->release_descriptor();
            if (self.get_cancellation_state().cancelled() != net::cancellation_type::none ||
                pending_->generation() != generation_)
                return self.complete(make_error_code(errc::cancelled), Result{});
        }
        if (try_once()) {
            if (!waited_) {  // still inside the initiating call: complete from the executor, never inline
                // (deferred: a continuation, queued on this thread without waking the reactor)
                finished_ = true;
                return net::defer(executor_, std::move(self));
            }
            return self.complete(ec_, std::move(*result_));
        }
        const bool initiating = !waited_;
        waited_ = true;
        EventSource source = source_();
#if defined(ASIO_HAS_POSIX_STREAM_DESCRIPTOR) || defined(BOOST_ASIO_HAS_POSIX_STREAM_DESCRIPTOR)
        const auto wait_type =
            source.writable ? net::posix::descriptor_base::wait_write : net::posix::descriptor_base::wait_read;
        if (source.descriptor != invalid_native_handle && source.notify_before_close) {
            if (auto* registered = pending_->registered(executor_, source))
                return registered->async_wait(wait_type, std::move(self));
        } else if (source.descriptor != invalid_native_handle) {
            // Else a descriptor of its own for each wait: the owner may have
            // closed and reused the number since the last one.
            if (!wait_) wait_ = pending_->make(executor_);
            wait_->descriptor.emplace(executor_);
            std::error_code ec;
            wait_->descriptor->assign(static_cast<int>(source.descriptor), ec);
            if (!ec) return wait_->descriptor->async_wait(wait_type, std::move(self));
            wait_->descriptor.reset();
        }
#endif
        if (!wait_) wait_ = pending_->make(executor_);
        if (source.watch) {
            // Registered before the second look, so no change falls between.
            source.watch([timer = std::weak_ptr<PendingWaits::Wait>(wait_), ex = executor_] {
                net::post(ex, [timer] {
                    if (auto wait = timer.lock()) wait->timer.cancel();
                });
            });
            if (try_once()) {
                if (!initiating) return self.complete(ec_, std::move(*result_));
                finished_ = true;
                return net::defer(executor_, std::move(self));
            }
            wait_->timer.expires_after(std::chrono::hours(24));
        } else {
            // Nothing to wait on: look again soon, less often the longer it takes.
            pause_ = std::min(pause_ * 2, std::chrono::microseconds(16000));
            wait_->timer.expires_after(pause_);
        }
        wait_->timer.async_wait(std::move(self));
    }

private:
    bool try_once() {
        ec_.clear();
        result_ = attempt_(ec_);
        return result_.has_value();
    }

    net::any_io_executor executor_;
    PendingWaits* pending_;
    std::uint64_t generation_;
    Attempt attempt_;
    Source source_;
    std::shared_ptr<PendingWaits::Wait> wait_;
    std::chrono::microseconds pause_{250};
    std::error_code ec_;
    std::optional<Result> result_;
    bool waited_ = false;  // a wait was started: the initiating call has returned
    bool finished_ = false;
};

// A completion handler that calls `convert(handler, args...)`, keeping the
// handler's executor and cancellation slot (lost by a plain lambda).
template <class Handler, class Convert>
auto adapt(Handler handler, const net::any_io_executor& ex, Convert convert) {
    auto slot = net::get_associated_cancellation_slot(handler);
    auto executor = net::get_associated_executor(handler, ex);
    return net::bind_cancellation_slot(
        slot, net::bind_executor(executor, [handler = std::move(handler), convert](auto&&... args) mutable {
            convert(handler, std::forward<decltype(args)>(args)...);
        }));
}

// Runs `work(ec)`, a call that blocks, on a thread of its own, and completes
// `handler` with its result on the executor; a cancellation request calls
// `cancel()` from the executor. For what no non-blocking call can do.
template <class Result, class Handler, class Work, class Cancel>
void run_blocking(const net::any_io_executor& ex, Handler handler, Work work, Cancel cancel) {
    auto slot = net::get_associated_cancellation_slot(handler);
    if (slot.is_connected()) slot.assign([cancel](net::cancellation_type) { cancel(); });
    auto completion_executor = net::get_associated_executor(handler, ex);
    std::thread([handler = std::move(handler), work = std::move(work), ex = completion_executor,
                 busy = net::make_work_guard(ex)]() mutable {
        std::error_code ec;
        Result result = work(ec);
        net::post(ex, [handler = std::move(handler), ec, result = std::move(result)]() mutable {
            auto slot = net::get_associated_cancellation_slot(handler);
            if (slot.is_connected()) slot.clear();
            std::move(handler)(ec, std::move(result));
        });
    }).detach();
}

template <class Result, class Token, class Attempt, class Source>
auto async_retry(const net::any_io_executor& ex, PendingWaits& pending, Attempt attempt, Source source,
                 Token&& token) {
    return net::async_compose<Token, void(std::error_code, Result)>(
        RetryOp<Result, Attempt, Source>(ex, pending, std::move(attempt), std::move(source)), token, ex);
}

}  // namespace detail
}  // namespace pipeslot::async
