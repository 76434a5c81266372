// A point in time derived from a Timeout, so that a loop of several system
// calls honours one timeout in total.
#pragma once

#include <pipeslot/timeout.hpp>

#include <chrono>
#include <cstdint>

namespace pipeslot::detail {

class Deadline {
public:
    using clock = std::chrono::steady_clock;

    // The Timeout must be valid (callers check is_valid() first).
    // A zero Timeout (a non-blocking call, the hot path of pipeslot/asio/)
    // is a point long past, found without asking the clock.
    explicit Deadline(Timeout t) noexcept
        : forever_(t.is_forever()),
          at_(forever_                             ? clock::time_point::max()
              : t.value() == Timeout::duration::zero() ? clock::time_point()
                                                       : clock::now() + t.value()) {}

    static Deadline never() noexcept { return Deadline(Timeout::forever()); }

    bool is_forever() const noexcept { return forever_; }
    bool expired() const noexcept { return !forever_ && (at_ == clock::time_point() || clock::now() >= at_); }
    clock::time_point time_point() const noexcept { return at_; }

    // Milliseconds left, rounded up, capped at `cap`; -1 when forever.
    std::int64_t remaining_ms(std::int64_t cap = INT32_MAX) const noexcept {
        if (forever_) return -1;
        if (at_ == clock::time_point()) return 0;
        auto left = std::chrono::ceil<std::chrono::milliseconds>(at_ - clock::now()).count();
        if (left < 0) return 0;
        return left > cap ? cap : left;
    }

    // What is left, as a Timeout for the next call.
    Timeout remaining() const noexcept {
        if (forever_) return Timeout::forever();
        return std::chrono::milliseconds(remaining_ms());
    }

    // Microseconds left, rounded up, capped at `cap`; -1 when forever.
    std::int64_t remaining_us(std::int64_t cap = INT64_MAX) const noexcept {
        if (forever_) return -1;
        if (at_ == clock::time_point()) return 0;
        auto left = std::chrono::ceil<std::chrono::microseconds>(at_ - clock::now()).count();
        if (left < 0) return 0;
        return left > cap ? cap : left;
    }

private:
    bool forever_;
    clock::time_point at_;
};

}  // namespace pipeslot::detail

namespace pipeslot::platform {
using detail::Deadline;
}
