// The fake's hosts and network, its mailslots and its anonymous pipes.
#include "fake_state.hpp"

#include <pipeslot/backend.hpp>
#include <pipeslot/error.hpp>

#include <algorithm>
#include <cstring>

namespace pipeslot::testing {

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

FakeNetwork::FakeNetwork() : state_(std::make_shared<FakeState>()) {}
FakeNetwork::~FakeNetwork() = default;

FakeSystem::FakeSystem(std::string host, std::string domain)
    : state_(std::make_shared<FakeState>()), host_(std::move(host)), self_(std::make_unique<FakeHost>()) {
    self_->network = state_.get();
    self_->name = upper(host_);
    self_->domain = upper(std::move(domain));
    state_->hosts.push_back(self_.get());
}

FakeSystem::FakeSystem(FakeNetwork& network, std::string host, std::string domain)
    : state_(network.state_), host_(std::move(host)), self_(std::make_unique<FakeHost>()) {
    self_->network = state_.get();
    self_->name = upper(host_);
    self_->domain = upper(std::move(domain));
    std::lock_guard lock(state_->mutex);
    state_->hosts.push_back(self_.get());
}

FakeSystem::~FakeSystem() {
    std::lock_guard lock(state_->mutex);
    auto& hosts = state_->hosts;
    hosts.erase(std::find(hosts.begin(), hosts.end(), self_.get()));
}

void FakeSystem::fail_next_open(errc error) {
    std::lock_guard lock(state_->mutex);
    self_->fail_next_open = error;
}

void FakeSystem::drop_next_datagrams(int count) {
    std::lock_guard lock(state_->mutex);
    self_->drop_datagrams = count;
}

void FakeSystem::close_after_bytes(std::size_t bytes) {
    std::lock_guard lock(state_->mutex);
    self_->close_after = bytes;
}

// --- mailslots ------------------------------------------------------------------

namespace {

class FakeMailslotEnd final : public MailslotBackend {
public:
    FakeMailslotEnd(FakeHost& host, std::string name, const MailslotOptions& o) : host_(host), name_(std::move(name)) {
        slot_.max_message_size = o.max_message_size;
        slot_.read_timeout = o.read_timeout;
        slot_.max_queued_bytes = o.max_queued_bytes;
        slot_.max_queued_messages = o.max_queued_messages;
        host_.mailslots[name_] = &slot_;
    }
    ~FakeMailslotEnd() override {
        std::lock_guard lock(host_.network->mutex);
        host_.mailslots.erase(name_);
        host_.network->notify();  // a writer waiting for room: nobody hears it now
    }
    std::size_t receive(std::span<std::byte> buffer, std::error_code& ec) override {
        std::unique_lock lock(host_.network->mutex);
        const auto ticket = slot_.cancels;
        if (!host_.network->wait(lock, slot_.read_timeout, slot_.cancels, ticket, [&] { return !slot_.queue.empty(); }, ec))
            return 0;
        auto& next = slot_.queue.front();
        if (next.size() > buffer.size()) {
            ec = errc::buffer_too_small;  // it stays
            return 0;
        }
        const auto n = next.size();
        if (n > 0) std::memcpy(buffer.data(), next.data(), n);
        slot_.queued_bytes -= n;
        slot_.queue.pop_front();
        host_.network->notify();  // room for a waiting writer
        return n;
    }
    MailslotInfo info(std::error_code&) override {
        std::lock_guard lock(host_.network->mutex);
        MailslotInfo i;
        i.max_message_size = slot_.max_message_size;
        if (!slot_.queue.empty()) i.next_message_size = slot_.queue.front().size();
        i.message_count = slot_.queue.size();
        i.read_timeout = slot_.read_timeout;
        i.dropped_datagrams = slot_.dropped;
        return i;
    }
    void set_read_timeout(Timeout timeout, std::error_code&) override {
        std::lock_guard lock(host_.network->mutex);
        slot_.read_timeout = timeout;
    }
    EventSource event_source() override {
        return watch_source(*host_.network);
    }
    void cancel() noexcept override {
        std::lock_guard lock(host_.network->mutex);
        ++slot_.cancels;
        host_.network->notify();
    }

private:
    FakeHost& host_;
    std::string name_;
    FakeMailslot slot_;
};

class FakeBroadcaster final : public BroadcasterBackend {
public:
    FakeBroadcaster(FakeHost& from, const MailslotName& to)
        : from_(from), slot_(to.folded_name()), local_(to.is_local()) {
        if (!to.is_local() && !to.is_broadcast()) target_ = upper(to.server());
        if (target_ == "LOCALHOST" || target_ == "127.0.0.1") target_ = from.name;  // this host, by another name
    }
    void send(std::span<const std::byte> message, Timeout timeout, std::error_code& ec) override {
        std::unique_lock lock(from_.network->mutex);
        if (!local_ && message.size() > max_network_mailslot_message) {
            ec = errc::message_too_large;
            return;
        }
        if (local_) {
            const auto it = from_.mailslots.find(slot_);
            if (it != from_.mailslots.end() && it->second->max_message_size > 0 &&
                message.size() > it->second->max_message_size) {
                ec = errc::message_too_large;
                return;
            }
            // A full queue is waited on, as the POSIX writer waits on its socket.
            const auto room = [&] {
                const auto reader = from_.mailslots.find(slot_);
                return reader == from_.mailslots.end() || reader->second->has_room();
            };
            const std::uint64_t never_cancelled = 0;
            if (!from_.network->wait(lock, timeout, never_cancelled, 0, room, ec)) return;
        }
        if (from_.drop_datagrams > 0) {  // fault injection: lost on the way
            --from_.drop_datagrams;
            return;
        }
        for (FakeHost* host : from_.network->hosts) {
            const bool reached = local_ ? host == &from_
                                        : target_.empty() || host->name == target_ || host->domain == target_;
            const auto it = reached ? host->mailslots.find(slot_) : host->mailslots.end();
            if (it == host->mailslots.end()) continue;  // nobody there: the sender never knows
            FakeMailslot& slot = *it->second;
            if ((slot.max_message_size > 0 && message.size() > slot.max_message_size) || !slot.has_room()) ++slot.dropped;
            else slot.push(message);
        }
        from_.network->notify();
    }

private:
    FakeHost& from_;
    std::string slot_;
    bool local_;
    std::string target_;  // empty: every host
};

}  // namespace

std::unique_ptr<MailslotBackend> FakeSystem::do_create_mailslot(const MailslotName& name, const MailslotOptions& o,
                                                                std::error_code& ec) {
    std::lock_guard lock(state_->mutex);
    if (self_->mailslots.count(name.folded_name())) return ec = errc::name_in_use, nullptr;
    return std::make_unique<FakeMailslotEnd>(*self_, name.folded_name(), o);
}

std::unique_ptr<BroadcasterBackend> FakeSystem::do_open_broadcaster(const MailslotName& name, std::error_code& ec) {
    std::lock_guard lock(state_->mutex);
    if (name.is_local() && !self_->mailslots.count(name.folded_name())) return ec = errc::not_found, nullptr;
    return std::make_unique<FakeBroadcaster>(*self_, name);
}

// --- anonymous pipes -------------------------------------------------------------

namespace {

struct FakeStream {
    std::deque<std::byte> bytes;
    std::size_t capacity;
    bool reader_closed = false, writer_closed = false;
};

class FakeReadEnd final : public ByteReader {
public:
    FakeReadEnd(FakeState& net, std::shared_ptr<FakeStream> s) : net_(net), s_(std::move(s)) {}
    ~FakeReadEnd() override { close(); }
    std::size_t read(std::span<std::byte> buffer, Timeout timeout, std::error_code& ec) override {
        ec.clear();
        std::unique_lock lock(net_.mutex);
        if (!s_ || !timeout.is_valid()) return ec = errc::invalid_argument, 0;
        const std::uint64_t never = 0;
        if (!net_.wait(lock, timeout, never, 0, [&] { return !s_->bytes.empty() || s_->writer_closed; }, ec)) return 0;
        if (s_->bytes.empty()) return ec = errc::end_of_stream, 0;
        const auto n = std::min(buffer.size(), s_->bytes.size());
        std::copy_n(s_->bytes.begin(), n, buffer.begin());
        s_->bytes.erase(s_->bytes.begin(), s_->bytes.begin() + static_cast<std::ptrdiff_t>(n));
        net_.notify();
        return n;
    }
    void close() noexcept override {
        std::lock_guard lock(net_.mutex);
        if (s_) s_->reader_closed = true;
        s_.reset();
        net_.notify();
    }
    bool is_open() const noexcept override { return s_ != nullptr; }
    EventSource readable_source() const override { return watch_source(net_); }

private:
    FakeState& net_;
    std::shared_ptr<FakeStream> s_;
};

class FakeWriteEnd final : public ByteWriter {
public:
    FakeWriteEnd(FakeState& net, std::shared_ptr<FakeStream> s) : net_(net), s_(std::move(s)) {}
    ~FakeWriteEnd() override { close(); }
    std::size_t write(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) override {
        ec.clear();
        std::unique_lock lock(net_.mutex);
        if (!s_ || !timeout.is_valid()) return ec = errc::invalid_argument, 0;
        std::size_t done = 0;
        const std::uint64_t never = 0;
        const detail_deadline deadline(timeout);
        while (done < data.size()) {
            const auto room = [&] { return s_->reader_closed || s_->bytes.size() < s_->capacity; };
            if (!net_.wait(lock, deadline.left(), never, 0, room, ec)) break;
            if (s_->reader_closed) {
                ec = done == 0 ? errc::pipe_closing : errc::broken_pipe;  // as the POSIX backend
                break;
            }
            const auto n = std::min(data.size() - done, s_->capacity - s_->bytes.size());
            s_->bytes.insert(s_->bytes.end(), data.begin() + static_cast<std::ptrdiff_t>(done),
                             data.begin() + static_cast<std::ptrdiff_t>(done + n));
            done += n;
            net_.notify();
        }
        return done;
    }
    void close() noexcept override {
        std::lock_guard lock(net_.mutex);
        if (s_) s_->writer_closed = true;
        s_.reset();
        net_.notify();
    }
    bool is_open() const noexcept override { return s_ != nullptr; }
    EventSource writable_source() const override { return watch_source(net_); }

private:
    // One timeout for every wait of a write.
    struct detail_deadline {
        explicit detail_deadline(Timeout t) : forever(t.is_forever()), at(std::chrono::steady_clock::now() + (forever ? std::chrono::milliseconds(0) : t.value())) {}
        Timeout left() const {
            if (forever) return Timeout::forever();
            const auto rest = std::chrono::ceil<std::chrono::milliseconds>(at - std::chrono::steady_clock::now());
            return rest.count() > 0 ? Timeout(rest) : Timeout::none();
        }
        bool forever;
        std::chrono::steady_clock::time_point at;
    };
    FakeState& net_;
    std::shared_ptr<FakeStream> s_;
};

}  // namespace

PipeStreams FakeSystem::do_create_pipe(const PipeOptions& options, std::error_code&) {
    auto stream = std::make_shared<FakeStream>();
    stream->capacity = options.buffer_size == 0 ? 65536 : options.buffer_size;
    return {std::make_unique<FakeReadEnd>(*state_, stream), std::make_unique<FakeWriteEnd>(*state_, stream)};
}

}  // namespace pipeslot::testing
