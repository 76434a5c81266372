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

// Windows discards what the client has not read when the server disconnects.
// The marker can only be seen once it is buffered, so look ahead for it.
void FrameReader::note_disconnect_ahead() noexcept {
    while (look_ahead_ && scan_ + frame_header_size <= end_) {
        const auto header = decode_header(std::span<const std::byte, frame_header_size>(&buffer_[scan_], frame_header_size));
        if (!header || !is_channel_frame(header->kind)) return;  // reported when reached
        if (header->kind == FrameKind::disconnect) {
            begin_ = end_ = scan_ = 0;
            in_message_ = false;
            left_ = 0;
            terminal_ = errc::not_connected;
            return;
        }
        scan_ += frame_header_size + header->length;
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
    note_disconnect_ahead();
    if (terminal_ == errc::not_connected) {
        ec = terminal_;
        return false;
    }
    return true;
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

// With a whole header buffered, enters the next message. False with ec set
// for a disconnect or malformed bytes.
bool FrameReader::start_next_frame(std::error_code& ec) {
    const auto header = decode_header(std::span<const std::byte, frame_header_size>(&buffer_[begin_], frame_header_size));
    if (!header || !is_channel_frame(header->kind)) {
        begin_ = end_ = scan_ = 0;
        terminal_ = errc::protocol_error;  // nothing after malformed bytes can be trusted
        ec = terminal_;
        return false;
    }
    if (header->kind == FrameKind::disconnect) {
        begin_ = end_ = scan_ = 0;
        terminal_ = errc::not_connected;
        ec = terminal_;
        return false;
    }
    if (scan_ == begin_) scan_ += frame_header_size + header->length;
    consume(frame_header_size);
    in_message_ = true;
    left_ = header->length;
    return true;
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
        if (buffered() >= frame_header_size) {
            if (!start_next_frame(ec)) return 0;
        } else if (!fill(source, deadline, ec)) {
            return 0;
        }
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
            if (!in_message_ && buffered() >= frame_header_size) {
                if (!start_next_frame(ec)) return 0;
            } else if (!fill(source, deadline, ec)) {
                return 0;
            }
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
            if (!start_next_frame(frame_error)) {
                if (got == 0) ec = frame_error;
                break;
            }
            continue;
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
    return in_message_ || buffered() > 0;
}

PeekResult FrameReader::peek(std::span<std::byte> out, ReadMode mode, PipeType type, ByteSource& source,
                             std::error_code& ec) {
    ec.clear();
    pull_available(source);
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
