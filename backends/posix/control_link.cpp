#include "control_link.hpp"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <utility>

namespace pipeslot::posix {
namespace {
constexpr std::size_t frame_size = detail::frame_header_size + detail::control_size;
constexpr std::size_t max_fds_per_read = 32;
// A broker that stops reading has this much queued before the link is given up.
constexpr std::size_t max_outbox_frames = 65536;

// One non-blocking sendmsg(2); `fd_to_pass` (if not -1) rides with the first byte.
ssize_t send_now(int fd, std::span<const std::byte> bytes, int fd_to_pass) noexcept {
    iovec part{const_cast<std::byte*>(bytes.data()), bytes.size()};
    msghdr msg{};
    msg.msg_iov = &part;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (fd_to_pass >= 0) {
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &fd_to_pass, sizeof(int));
    }
    return ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}
}  // namespace

ControlLink::ControlLink(ControlLink&& o) noexcept { *this = std::move(o); }

ControlLink& ControlLink::operator=(ControlLink&& o) noexcept {
    if (this != &o) {
        reset();
        fd_ = std::exchange(o.fd_, -1);
        inbox_ = std::move(o.inbox_);
        received_fds_ = std::move(o.received_fds_);
        outbox_ = std::move(o.outbox_);
        broken_ = std::exchange(o.broken_, false);
    }
    return *this;
}

ControlLink::~ControlLink() { reset(); }

void ControlLink::reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    for (int fd : received_fds_) ::close(fd);
    received_fds_.clear();
    for (auto& o : outbox_)
        if (o.fd >= 0) ::close(o.fd);
    outbox_.clear();
    inbox_.clear();
}

bool ControlLink::send(const detail::Control& control, int fd_to_pass) {
    if (broken_ || fd_ < 0 || outbox_.size() >= max_outbox_frames) {
        if (fd_to_pass >= 0) ::close(fd_to_pass);
        broken_ = true;
        return false;
    }
    const auto frame = detail::encode_control(control);
    outbox_.push_back({std::vector<std::byte>(frame.begin(), frame.end()), 0, fd_to_pass});
    return flush();
}

bool ControlLink::flush() {
    while (!outbox_.empty() && !broken_) {
        auto& o = outbox_.front();
        const ssize_t n = send_now(fd_, std::span(o.bytes).subspan(o.sent), o.fd);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
            broken_ = true;
            return false;
        }
        if (o.fd >= 0) {  // it went with the first byte: ours no longer
            ::close(o.fd);
            o.fd = -1;
        }
        o.sent += static_cast<std::size_t>(n);
        if (o.sent == o.bytes.size()) outbox_.pop_front();
    }
    return !broken_;
}

bool ControlLink::read_available() {
    std::byte buffer[64 * frame_size];
    for (;;) {
        iovec part{buffer, sizeof buffer};
        msghdr msg{};
        msg.msg_iov = &part;
        msg.msg_iovlen = 1;
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * max_fds_per_read)];
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        const ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno == EAGAIN || errno == EWOULDBLOCK;
        }
        for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
            const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (std::size_t i = 0; i < count; ++i) {
                int fd;
                std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                received_fds_.push_back(fd);
            }
        }
        if (msg.msg_flags & MSG_CTRUNC) {
            broken_ = true;  // descriptors were lost
            return false;
        }
        if (n == 0) return false;
        inbox_.insert(inbox_.end(), buffer, buffer + n);
        if (static_cast<std::size_t>(n) < sizeof buffer) return true;
    }
}

std::optional<ControlLink::Frame> ControlLink::next_frame() {
    if (inbox_.size() < detail::frame_header_size) return std::nullopt;
    const auto header =
        detail::decode_header(std::span<const std::byte, detail::frame_header_size>(inbox_.data(), detail::frame_header_size));
    if (!header || header->kind != detail::FrameKind::control) return Frame{};
    const std::size_t size = detail::frame_header_size + header->length;
    if (inbox_.size() < size) return std::nullopt;
    Frame frame;
    frame.control = detail::decode_control(std::span(inbox_).subspan(detail::frame_header_size, header->length));
    inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<std::ptrdiff_t>(size));
    if (frame.control && frame.control->op == detail::ControlOp::client) {
        if (received_fds_.empty()) return Frame{};  // a client frame without its descriptor
        frame.fd = received_fds_.front();
        received_fds_.pop_front();
    }
    return frame;
}

bool send_all_now(int fd, std::span<const std::byte> bytes, int fd_to_pass) noexcept {
    return send_now(fd, bytes, fd_to_pass) == static_cast<ssize_t>(bytes.size());
}

ssize_t receive_with_fd(int fd, std::span<std::byte> into, Fd& passed) noexcept {
    iovec part{into.data(), into.size()};
    msghdr msg{};
    msg.msg_iov = &part;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0) return n;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int received;
            std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (passed.get() < 0) passed.reset(received);
            else ::close(received);
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) {  // a descriptor did not fit (no room for it, or too many sent): lost
        passed.reset();
        errno = EMFILE;
        return -1;
    }
    return n;
}

bool peer_credentials(int fd, uid_t& uid, pid_t& pid) noexcept {
    ucred cred{};
    socklen_t size = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &size) < 0) return false;
    uid = cred.uid;
    pid = cred.pid;
    return true;
}

}  // namespace pipeslot::posix
