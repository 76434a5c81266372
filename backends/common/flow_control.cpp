#include "flow_control.hpp"

#include <algorithm>

namespace pipeslot::detail {

CreditFrame encode_credit(FrameKind kind, std::uint64_t value) noexcept {
    CreditFrame out{};
    const auto header = encode_header({kind, credit_payload_size});
    std::copy(header.begin(), header.end(), out.begin());
    for (std::size_t i = 0; i < credit_payload_size; ++i)
        out[frame_header_size + i] = static_cast<std::byte>((value >> (8 * i)) & 0xFF);
    return out;
}

void FlowControl::reset(std::uint64_t write_quota, std::uint64_t read_quota) {
    std::lock_guard lock(mutex_);
    write_quota_ = write_quota;
    sent_ = credited_ = 0;
    batch_ = std::max<std::uint64_t>(read_quota / 2, 1);
    taken_ = reported_ = 0;
    wanted_ = wanted_last_ = nobody_waits;
    ++wakes_;
    changed_.notify_all();
}

std::optional<std::uint64_t> FlowControl::will_send(std::uint64_t bytes) {
    std::lock_guard lock(mutex_);
    sent_ += bytes;
    // Windows: an empty write never waits.
    if (bytes == 0 || sent_ - credited_ <= write_quota_) return std::nullopt;
    return sent_ - write_quota_;
}

void FlowControl::unsent(std::uint64_t bytes) {
    std::lock_guard lock(mutex_);
    sent_ -= std::min(bytes, sent_ - credited_);
}

std::optional<std::uint64_t> FlowControl::flush_target() {
    std::lock_guard lock(mutex_);
    if (credited_ >= sent_) return std::nullopt;
    return sent_;
}

bool FlowControl::taken_by_peer(std::uint64_t target) {
    std::lock_guard lock(mutex_);
    return credited_ >= target;
}

void FlowControl::woken() {
    std::lock_guard lock(mutex_);
    ++wakes_;
    changed_.notify_all();
}

void FlowControl::took(std::size_t n) {
    std::lock_guard lock(mutex_);
    taken_ += n;
}

bool FlowControl::due_locked() const noexcept {
    if (taken_ == reported_) return false;
    return taken_ >= wanted_ || taken_ - reported_ >= batch_;
}

bool FlowControl::credit_is_due() {
    std::lock_guard lock(mutex_);
    return due_locked();
}

std::optional<std::uint64_t> FlowControl::credit_due() {
    std::lock_guard lock(mutex_);
    if (!due_locked()) return std::nullopt;
    return taken_;
}

std::optional<std::uint64_t> FlowControl::unreported_credit() {
    std::lock_guard lock(mutex_);
    if (taken_ == reported_) return std::nullopt;
    return taken_;
}

void FlowControl::credit_sent(std::uint64_t taken) {
    std::lock_guard lock(mutex_);
    reported_ = std::max(reported_, taken);
    // Writers that asked for more than this are still waiting: the next
    // credit they get is when the last of them is satisfied (or a batch).
    if (reported_ >= wanted_last_) wanted_ = wanted_last_ = nobody_waits;
    else if (reported_ >= wanted_) wanted_ = wanted_last_;
}

void FlowControl::credit(std::uint64_t taken) noexcept {
    std::lock_guard lock(mutex_);
    if (taken <= credited_) return;
    credited_ = std::min(taken, sent_);  // never more than was sent, whatever the peer says
    changed_.notify_all();
}

void FlowControl::credit_wanted(std::uint64_t taken) noexcept {
    std::lock_guard lock(mutex_);
    if (taken <= reported_) return;  // the peer has been told already; its credit is on the way
    wanted_ = std::min(wanted_, taken);
    wanted_last_ = wanted_last_ == nobody_waits ? taken : std::max(wanted_last_, taken);
}

}  // namespace pipeslot::detail
