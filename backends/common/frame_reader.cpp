#include "frame_reader.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <cstring>

namespace pipeslot::detail {
namespace {
constexpr std::size_t initial_capacity = 4096;
constexpr std::size_t direct_threshold = 4096;     // larger reads skip the buffer
constexpr std::size_t peek_capacity = 1u << 20;    // what peek pulls in at most
}  // namespace

void FrameReader::reset() noexcept {
    peeked_ = false;
    begin_ = end_ = scan_ = 0;
    in_message_ = false;
    left_ = 0;
    terminal_.clear();
}

void FrameReader::fail(std::error_code why) noexcept {
    if (!terminal_) terminal_ = why;
}

void FrameReader::consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) {  // empty: rewind, keeping the next header's position relative
        scan_ -= std::min(scan_, begin_);
        begin_ = end_ = 0;
    }
}

namespace {

std::uint64_t credit_value(const std::byte* payload) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(payload[i]) << (8 * i);
    return v;
}

}  // namespace

// A flow frame whose payload is buffered at `at`, told to the listener once.
void FrameReader::take_flow_frame(FrameKind kind, std::size_t at) noexcept {
    if (!flow_) return;
    const auto value = credit_value(&buffer_[at + frame_header_size]);
    if (kind == FrameKind::credit) flow_->credit(value);
    else flow_->credit_wanted(value);
}

// Looks at the headers buffered ahead of the reader. Windows discards what
// the client has not read when the server disconnects, and the marker can
// only be seen once it is buffered; flow frames count the moment they come.
void FrameReader::scan_ahead() noexcept {
    while (scan_ + frame_header_size <= end_) {
        const auto header = decode_header(std::span<const std::byte, frame_header_size>(&buffer_[scan_], frame_header_size));
        if (!header || !is_channel_frame(header->kind)) return;  // reported when reached
        if (header->kind == FrameKind::disconnect) {
            begin_ = end_ = scan_ = 0;
            in_message_ = false;
            left_ = 0;
            terminal_ = errc::not_connected;
            return;
        }
        if (is_flow_frame(header->kind)) {
            if (scan_ + frame_header_size + credit_payload_size > end_) return;  // its value is still on the way
            take_flow_frame(header->kind, scan_);
        }
        scan_ += frame_header_size + header->length;
    }
}

// Flow frames between the reader and the next message are spent: drop them,
// so that nothing counts them as unread.
void FrameReader::skip_flow_frames() noexcept {
    std::error_code ignored;
    while (!in_message_ && buffered() >= frame_header_size && !terminal_) {
        const auto kind = static_cast<FrameKind>(buffer_[begin_]);
        if (!is_flow_frame(kind) || start_next_frame(ignored) != Step::skipped) return;
    }
}

bool FrameReader::fill(ByteSource& source, const Deadline& deadline, std::error_code& ec) {
    if (terminal_) {
        ec = terminal_;
        return false;
    }
    if (buffer_.empty()) buffer_.resize(initial_capacity);
    if (end_ == buffer_.size()) {
        if (begin_ > 0) {  // compact
            std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
            end_ -= begin_;
            scan_ -= begin_;
            begin_ = 0;
        } else {
            buffer_.resize(buffer_.size() * 2);
        }
    }
    std::error_code pull_error;
    const auto n = source.pull(std::span(buffer_).subspan(end_), deadline, pull_error);
    if (n == 0) {
        if (pull_error == errc::timed_out || pull_error == errc::cancelled) {
            ec = pull_error;
        } else {
            fail(pull_error == errc::end_of_stream ? make_error_code(errc::broken_pipe) : pull_error);
            ec = terminal_;
        }
        return false;
    }
    end_ += n;
    scan_ahead();
    if (terminal_ == errc::not_connected) {
        ec = terminal_;
        return false;
    }
    skip_flow_frames();
    return true;
}

bool FrameReader::pump(ByteSource& source, const Deadline& deadline, std::error_code& ec) {
    ec.clear();
    return fill(source, deadline, ec);
}

std::size_t FrameReader::pull_direct(std::span<std::byte> out, ByteSource& source, const Deadline& deadline,
                                     std::error_code& ec) {
    std::error_code pull_error;
    const auto n = source.pull(out, deadline, pull_error);
    if (n > 0) {
        left_ -= n;
        scan_ = left_;  // the buffer is empty: the next header is after the rest of this message
        return n;
    }
    if (pull_error == errc::timed_out || pull_error == errc::cancelled) ec = pull_error;
    else {
        fail(pull_error == errc::end_of_stream ? make_error_code(errc::broken_pipe) : pull_error);
        ec = terminal_;
    }
    return 0;
}

// With a whole header buffered: enters the next message, or takes a flow
// frame (skipped; short_of_bytes while its value is still on the way).
// failed with ec set for a disconnect or malformed bytes.
FrameReader::Step FrameReader::start_next_frame(std::error_code& ec) {
    const auto header = decode_header(std::span<const std::byte, frame_header_size>(&buffer_[begin_], frame_header_size));
    if (!header || !is_channel_frame(header->kind)) {
        begin_ = end_ = scan_ = 0;
        terminal_ = errc::protocol_error;  // nothing after malformed bytes can be trusted
        ec = terminal_;
        return Step::failed;
    }
    if (header->kind == FrameKind::disconnect) {
        begin_ = end_ = scan_ = 0;
        terminal_ = errc::not_connected;
        ec = terminal_;
        return Step::failed;
    }
    const std::size_t frame_size = frame_header_size + header->length;
    if (is_flow_frame(header->kind)) {
        if (buffered() < frame_size) return Step::short_of_bytes;
        if (scan_ == begin_) {  // not yet seen by scan_ahead
            take_flow_frame(header->kind, begin_);
            scan_ += frame_size;
        }
        consume(frame_size);
        return Step::skipped;
    }
    if (scan_ == begin_) scan_ += frame_size;
    consume(frame_header_size);
    in_message_ = true;
    left_ = header->length;
    return Step::entered;
}

std::size_t FrameReader::receive(std::span<std::byte> out, ReadMode mode, ByteSource& source,
                                 const Deadline& deadline, std::error_code& ec) {
    ec.clear();
    if (peeked_) {
        // What peek showed is still unread: a disconnect since then discards it.
        pull_available(source);
        peeked_ = buffered() > 0;
    }
    return mode == ReadMode::message ? receive_message(out, source, deadline, ec)
                                     : receive_bytes(out, source, deadline, ec);
}

std::size_t FrameReader::receive_message(std::span<std::byte> out, ByteSource& source, const Deadline& deadline,
                                         std::error_code& ec) {
    while (!in_message_) {
        const auto step = buffered() >= frame_header_size ? start_next_frame(ec) : Step::short_of_bytes;
        if (step == Step::failed) return 0;
        if (step == Step::short_of_bytes && !fill(source, deadline, ec)) return 0;
    }
    const std::size_t want = std::min(left_, out.size());
    std::size_t got = 0;
    while (got < want) {
        if (buffered() > 0) {
            const auto n = std::min(buffered(), want - got);
            std::memcpy(out.data() + got, buffer_.data() + begin_, n);
            consume(n);
            got += n;
            left_ -= n;
        } else if (want - got >= direct_threshold) {
            got += pull_direct(out.subspan(got, want - got), source, deadline, ec);
            if (ec) break;
        } else if (!fill(source, deadline, ec)) {
            break;
        }
    }
    if (ec) return got;  // timed out, cancelled or cut short: the next call continues this message
    if (left_ > 0) ec = errc::more_data;
    else in_message_ = false;
    return got;
}

std::size_t FrameReader::receive_bytes(std::span<std::byte> out, ByteSource& source, const Deadline& deadline,
                                       std::error_code& ec) {
    if (out.empty()) {  // Windows' zero-byte read: returns once there is data, and leaves it
        for (;;) {
            if (in_message_ && left_ == 0) in_message_ = false;  // empty messages: nothing to a byte reader
            if (in_message_ && buffered() > 0) return 0;
            const auto step = !in_message_ && buffered() >= frame_header_size ? start_next_frame(ec)
                                                                              : Step::short_of_bytes;
            if (step == Step::failed) return 0;
            if (step == Step::short_of_bytes && !fill(source, deadline, ec)) return 0;
        }
    }
    std::size_t got = 0;
    while (got < out.size()) {
        if (in_message_ && left_ == 0) in_message_ = false;
        if (in_message_ && buffered() > 0) {
            const auto n = std::min({buffered(), left_, out.size() - got});
            std::memcpy(out.data() + got, buffer_.data() + begin_, n);
            consume(n);
            got += n;
            left_ -= n;
            continue;
        }
        if (!in_message_ && buffered() >= frame_header_size) {
            std::error_code frame_error;  // reported now, or by the next call if bytes were read
            const auto step = start_next_frame(frame_error);
            if (step == Step::failed) {
                if (got == 0) ec = frame_error;
                break;
            }
            if (step != Step::short_of_bytes) continue;
        }
        if (got > 0) break;  // byte mode returns what was there
        if (in_message_ && left_ >= direct_threshold && out.size() >= direct_threshold) {
            got += pull_direct(out.first(std::min(left_, out.size())), source, deadline, ec);
            if (ec) break;
        } else if (!fill(source, deadline, ec)) {
            break;
        }
    }
    return got;
}

void FrameReader::pull_available(ByteSource& source) {
    const Deadline now(Timeout::none());
    while (!terminal_ && buffered() < peek_capacity) {
        std::error_code ec;
        if (!fill(source, now, ec)) return;
    }
}

bool FrameReader::holds_unread(ByteSource& source) {
    pull_available(source);
    skip_flow_frames();
    return in_message_ || buffered() > 0;
}

PeekResult FrameReader::peek(std::span<std::byte> out, ReadMode mode, PipeType type, ByteSource& source,
                             std::error_code& ec) {
    ec.clear();
    pull_available(source);
    skip_flow_frames();
    peeked_ = buffered() > 0;
    PeekResult r;
    bool first_message = true;
    const auto take = [&](std::size_t at, std::size_t available, std::size_t message_left) {
        r.total_available += available;
        std::size_t n = 0;
        if (first_message || mode == ReadMode::byte) {
            n = std::min(available, out.size() - r.copied);
            if (n > 0) std::memcpy(out.data() + r.copied, buffer_.data() + at, n);
            r.copied += n;
        }
        // As PeekNamedPipe: what is left of the message after the bytes copied.
        if (first_message) r.left_in_message = message_left - n;
        first_message = false;
    };
    std::size_t at = begin_;
    if (in_message_) {
        take(at, std::min(left_, buffered()), left_);
        at += left_;
    }
    while (at + frame_header_size <= end_) {
        const auto header = decode_header(std::span<const std::byte, frame_header_size>(&buffer_[at], frame_header_size));
        if (header && is_flow_frame(header->kind)) {  // not data: told to the listener already
            at += frame_header_size + header->length;
            continue;
        }
        if (!header || header->kind != FrameKind::message) break;
        at += frame_header_size;
        take(at, std::min<std::size_t>(header->length, end_ - at), header->length);
        at += header->length;
    }
    if (type == PipeType::byte) r.left_in_message = 0;
    const bool anything = in_message_ || buffered() > 0;
    if (!anything && terminal_) ec = terminal_;
    return r;
}

}  // namespace pipeslot::detail
