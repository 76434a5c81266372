// A timeout for blocking operations: a duration, zero (do not wait), or forever.
#pragma once

#include <chrono>
#include <cstdint>

namespace pipeslot {

class Timeout {
public:
    using duration = std::chrono::milliseconds;

    // Any duration; rounded up to whole milliseconds. Negative is invalid and
    // makes the operation fail with errc::invalid_argument.
    template <class Rep, class Period>
    constexpr Timeout(std::chrono::duration<Rep, Period> d) noexcept  // NOLINT: implicit by design
        : ms_(std::chrono::ceil<duration>(d).count()) {
        if (ms_ < 0) ms_ = invalid_ms;
    }

    static constexpr Timeout forever() noexcept { return Timeout(forever_ms, tag{}); }
    static constexpr Timeout none() noexcept { return Timeout(duration::zero()); }

    constexpr bool is_forever() const noexcept { return ms_ == forever_ms; }
    constexpr bool is_valid() const noexcept { return ms_ != invalid_ms; }
    // Meaningful only when neither forever nor invalid.
    constexpr duration value() const noexcept { return duration(ms_); }

    friend constexpr bool operator==(Timeout, Timeout) = default;

private:
    struct tag {};
    static constexpr std::int64_t forever_ms = -1;
    static constexpr std::int64_t invalid_ms = -2;
    constexpr Timeout(std::int64_t ms, tag) noexcept : ms_(ms) {}
    std::int64_t ms_;
};

}  // namespace pipeslot
