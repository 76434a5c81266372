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
    explicit Deadline(Timeout t) noexcept
        : forever_(t.is_forever()), at_(forever_ ? clock::time_point::max() : clock::now() + t.value()) {}

    static Deadline never() noexcept { return Deadline(Timeout::forever()); }

    bool is_forever() const noexcept { return forever_; }
    bool expired() const noexcept { return !forever_ && clock::now() >= at_; }
    clock::time_point time_point() const noexcept { return at_; }

    // Milliseconds left, rounded up, capped at `cap`; -1 when forever.
    std::int64_t remaining_ms(std::int64_t cap = INT32_MAX) const noexcept {
        if (forever_) return -1;
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
