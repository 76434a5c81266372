// The fake's named pipes: both ends of a connection are FakeEnds over one
// Connection; the server's end also owns its FakeInstance.
#include "fake_state.hpp"

#include "../common/access.hpp"

#include <pipeslot/backend.hpp>
#include <pipeslot/error.hpp>

#include <algorithm>
#include <cstring>
#include <utility>

#ifdef _WIN32
#include <process.h>
#define PIPESLOT_GETPID _getpid
#else
#include <unistd.h>
#define PIPESLOT_GETPID getpid
#endif

namespace pipeslot::testing {
namespace {

class FakeEnd final : public InstanceBackend {
public:
    // A client's end.
    FakeEnd(FakeHost& host, std::shared_ptr<Connection> c, const FakePipe& pipe, const FakeInstance& instance,
            const ClientOptions& o, std::string folded_name)
        : host_(host), server_(false), folded_name_(std::move(folded_name)), client_connection_(std::move(c)),
          type_(pipe.options.type),
          mode_(o.read_mode.value_or(type_ == PipeType::message ? ReadMode::message : ReadMode::byte)),
          can_read_(detail::reads(o.access)), can_write_(detail::writes(o.access)),
          max_(pipe.options.max_instances), in_(instance.in_buffer), out_(instance.out_buffer) {}
    // A server's end: a new instance of `pipe`.
    FakeEnd(FakeHost& host, FakePipe& pipe, const ServerOptions& o)
        : host_(host), server_(true), instance_(std::make_unique<FakeInstance>()), type_(o.type), mode_(o.read_mode),
          wait_mode_(o.wait_mode),
          can_read_(o.access != PipeAccess::outbound), can_write_(o.access != PipeAccess::inbound),
          max_(o.max_instances), in_(o.in_buffer_size), out_(o.out_buffer_size) {
        instance_->pipe = &pipe;
        instance_->listening_since = ++host.network->listen_order;
        instance_->in_buffer = o.in_buffer_size;
        instance_->out_buffer = o.out_buffer_size;
        pipe.instances.push_back(instance_.get());
    }

    ~FakeEnd() override {
        std::lock_guard lock(net().mutex);
        if (!server_) {
            client_connection_->client_closed = true;
        } else {
            if (instance_->connection) instance_->connection->server_closed = true;
            auto& list = instance_->pipe->instances;
            list.erase(std::find(list.begin(), list.end(), instance_.get()));
            if (list.empty()) {
                for (auto it = host_.pipes.begin(); it != host_.pipes.end(); ++it)
                    if (&it->second == instance_->pipe) {
                        host_.pipes.erase(it);
                        break;
                    }
            }
        }
        net().notify();
    }

    std::size_t receive(std::span<std::byte> buffer, Timeout timeout, std::error_code& ec) override {
        return receive_in(buffer, timeout, wait_mode_, ec);
    }

    // `mode`: this end's wait mode, or wait for a transact (which PIPE_NOWAIT does not change).
    std::size_t receive_in(std::span<std::byte> buffer, Timeout timeout, WaitMode mode, std::error_code& ec) {
        std::unique_lock lock(net().mutex);
        if (!can_read_) return fail(ec, errc::access_denied);
        const auto ticket = cancels_;
        Connection* c = nullptr;
        const auto readable = [&] {
            c = connection();
            if (c && mode_ == ReadMode::byte) {  // empty messages are nothing to a byte reader
                auto& queue = incoming(*c);
                while (!queue.empty() && queue.front().left() == 0) queue.pop_front();
            }
            return !c || c->disconnected || !incoming(*c).empty() || peer_closed(*c);
        };
        if (mode == WaitMode::nowait) {  // PIPE_NOWAIT: nothing there is ERROR_NO_DATA
            if (!readable()) return fail(ec, errc::no_data);
        } else {
            if (auto* now = connection()) reading(*now) = buffer.size();  // a nowait writer may fill it at once
            const bool ready = net().wait(lock, timeout, cancels_, ticket, readable, ec);
            if (auto* now = connection()) reading(*now) = 0;
            if (!ready) return 0;
        }
        if (auto e = cut_off(c); e) return fail(ec, *e);
        auto& queue = incoming(*c);
        if (queue.empty()) return fail(ec, errc::broken_pipe);  // drained, and the peer has gone
        std::size_t got = 0;
        if (mode_ == ReadMode::message) {
            got = take(*c, queue.front(), buffer);
            if (queue.front().left() > 0) ec = errc::more_data;
            else queue.pop_front();
        } else {
            while (!queue.empty() && got < buffer.size()) {  // across messages, skipping empty ones
                got += take(*c, queue.front(), buffer.subspan(got));
                if (queue.front().left() == 0) queue.pop_front();
            }
        }
        net().notify();  // room for a waiting writer
        return got;
    }

    // As Windows: the message is in the pipe at once (the reader can take
    // it); the write completes once what is unread of it and of the messages
    // ahead of it fits in the reading end's buffer quota.
    std::size_t send(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) override {
        return send_in(data, timeout, wait_mode_, ec);
    }
    std::size_t send_waiting(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) override {
        return send_in(data, timeout, WaitMode::wait, ec);
    }

    std::size_t send_in(std::span<const std::byte> data, Timeout timeout, WaitMode mode, std::error_code& ec) {
        std::unique_lock lock(net().mutex);
        if (!can_write_) return fail(ec, errc::access_denied);
        if (data.empty() && type_ == PipeType::byte) return 0;
        const auto ticket = cancels_;
        const auto c = connection_ptr();
        if (auto e = cut_off(c.get()); e) return fail(ec, *e);
        if (peer_closed(*c)) return fail(ec, errc::pipe_closing);  // ERROR_NO_DATA on a write
        // PIPE_NOWAIT: a write that does not fit the quota now (and a read
        // waiting at the other end) writes nothing and succeeds; on a byte
        // pipe the waiting read still takes its part.
        if (mode == WaitMode::nowait && !data.empty()) {
            const std::size_t at_once = unread_outgoing(*c) == 0 ? peer_reading(*c) : 0;
            if (unread_outgoing(*c) + data.size() > quota() + at_once)
                data = type_ == PipeType::byte ? data.first(std::min(data.size(), at_once)) : data.first(0);
            if (data.empty()) return 0;
        }
        outgoing(*c).push_back({{data.begin(), data.end()}, 0});
        unread_outgoing(*c) += data.size();
        const auto end = sent_outgoing(*c) += data.size();
        if (!server_) {
            c->client_sent += data.size();
            if (c->client_sent >= c->close_after) c->server_closed = c->client_closed = true;  // the fault: it "dies"
        }
        net().notify();
        if (data.empty()) return 0;  // an empty write never waits
        if (mode == WaitMode::nowait) return data.size();  // it fit (a waiting read takes the rest)
        const auto unread_to_here = [&] { return end - (sent_outgoing(*c) - unread_outgoing(*c)); };
        const auto fits = [&] { return c->disconnected || peer_closed(*c) || unread_to_here() <= quota(); };
        // Cut short (timeout, cancel), the message stays delivered, as on POSIX.
        if (!net().wait(lock, timeout, cancels_, ticket, fits, ec)) return data.size();
        if (unread_to_here() <= quota()) return data.size();
        if (c->disconnected) return fail(ec, errc::not_connected);
        return fail(ec, errc::broken_pipe);  // the reader went while this waited
    }

    // FlushFileBuffers: waits until the other end has taken everything.
    void flush(std::error_code& ec) override {
        std::unique_lock lock(net().mutex);
        const auto c = connection_ptr();
        if (!c) return;  // a server end without a client: nothing to flush
        if (!server_ && c->disconnected) return (void)fail(ec, errc::not_connected);
        const auto ticket = cancels_;
        const auto done = [&] { return c->disconnected || peer_closed(*c) || unread_outgoing(*c) == 0; };
        if (!net().wait(lock, Timeout::forever(), cancels_, ticket, done, ec)) return;
        if (unread_outgoing(*c) == 0) return;
        ec = c->disconnected ? errc::not_connected : errc::broken_pipe;
    }

    PeekResult peek(std::span<std::byte> buffer, std::error_code& ec) override {
        std::lock_guard lock(net().mutex);
        if (!can_read_) return fail(ec, errc::access_denied), PeekResult{};
        Connection* c = connection();
        if (auto e = cut_off_for_state(c); e) return fail(ec, *e), PeekResult{};
        PeekResult r;
        bool first = true;
        for (const auto& m : incoming(*c)) {
            r.total_available += m.left();
            std::size_t n = 0;
            if (first || mode_ == ReadMode::byte) {
                n = std::min(m.left(), buffer.size() - r.copied);
                if (n > 0) std::memcpy(buffer.data() + r.copied, m.data.data() + m.read, n);
                r.copied += n;
            }
            if (first && type_ == PipeType::message) r.left_in_message = m.left() - n;
            first = false;
        }
        if (incoming(*c).empty() && peer_closed(*c)) ec = errc::broken_pipe;
        return r;
    }

    std::size_t transact(std::span<const std::byte> request, std::span<std::byte> reply, Timeout timeout,
                         std::error_code& ec) override {
        if (mode_ != ReadMode::message) return fail(ec, errc::bad_pipe);
        {
            std::lock_guard lock(net().mutex);
            Connection* c = connection();
            if (auto e = cut_off_for_state(c); e) return fail(ec, *e);
            if (!incoming(*c).empty()) return fail(ec, errc::pipe_busy);
        }
        send_in(request, timeout, WaitMode::wait, ec);  // TransactNamedPipe waits in either mode
        return ec ? 0 : receive_in(reply, timeout, WaitMode::wait, ec);
    }

    void set_read_mode(ReadMode mode, std::error_code& ec) override {
        if (mode == ReadMode::message && type_ == PipeType::byte) {
            ec = errc::invalid_argument;
            return;
        }
        std::lock_guard lock(net().mutex);
        mode_ = mode;
    }

    void set_wait_mode(WaitMode mode, std::error_code&) override {
        std::lock_guard lock(net().mutex);
        wait_mode_ = mode;
    }

    ChannelInfo info(std::error_code&) override {
        std::lock_guard lock(net().mutex);
        std::size_t current = 0;
        if (server_) {
            current = instance_->pipe->instances.size();
        } else if (const auto it = host_.pipes.find(folded_name_); it != host_.pipes.end()) {
            current = it->second.instances.size();  // none once the name is gone
        }
        return {type_, mode_, max_, in_, out_, server_, static_cast<unsigned>(current), wait_mode_};
    }

    void cancel() noexcept override {
        std::lock_guard lock(net().mutex);
        ++cancels_;
        net().notify();
    }

    void accept(Timeout timeout, std::error_code& ec) override {
        std::unique_lock lock(net().mutex);
        if (instance_->state == FakeInstance::State::connected) {  // came before this call, as Windows reports it
            ec = instance_->connection->client_closed ? errc::no_data : errc::already_connected;
            return;
        }
        if (instance_->state == FakeInstance::State::disconnected) {
            instance_->state = FakeInstance::State::listening;  // free for the next client
            instance_->listening_since = ++net().listen_order;
            net().notify();
        }
        if (wait_mode_ == WaitMode::nowait) return (void)fail(ec, errc::pipe_listening);  // ConnectNamedPipe, PIPE_NOWAIT
        const auto ticket = cancels_;
        net().wait(lock, timeout, cancels_, ticket, [&] { return instance_->state == FakeInstance::State::connected; }, ec);
    }

    void disconnect(std::error_code& ec) override {
        std::lock_guard lock(net().mutex);
        if (instance_->state != FakeInstance::State::connected) {
            ec = instance_->state == FakeInstance::State::listening ? errc::pipe_listening : errc::not_connected;
            return;
        }
        auto& c = *instance_->connection;
        c.disconnected = true;  // the client's unread data goes with it
        c.to_client.clear();
        c.unread_to_client = 0;
        instance_->connection.reset();
        instance_->state = FakeInstance::State::disconnected;
        net().notify();
    }

    // As Windows: a server end without a client has no client process
    // (ERROR_NOT_FOUND); a disconnected client knows neither (ERROR_PIPE_NOT_CONNECTED).
    std::int64_t client_process_id(std::error_code& ec) override {
        std::lock_guard lock(net().mutex);
        if (server_ && instance_->state != FakeInstance::State::connected) return fail(ec, errc::not_found), -1;
        if (!server_ && client_connection_->disconnected) return fail(ec, errc::not_connected), -1;
        return PIPESLOT_GETPID();  // every fake client lives in this process
    }

    std::string client_user(std::error_code& ec) override {
        std::lock_guard lock(net().mutex);
        if (instance_->state != FakeInstance::State::connected) return fail(ec, errc::not_connected), std::string();
        return current_user();
    }

    // Every fake client is on this computer (ERROR_PIPE_LOCAL, with a client or without).
    EventSource event_source(ChannelEvent) override {
        return watch_source(net());
    }
    std::string client_computer_name(std::error_code& ec) override { return fail(ec, errc::pipe_local), std::string(); }

    std::int64_t server_process_id(std::error_code& ec) override {
        std::lock_guard lock(net().mutex);
        if (!server_ && client_connection_->disconnected) return fail(ec, errc::not_connected), -1;
        return PIPESLOT_GETPID();  // every fake server too
    }
    std::string server_user(std::error_code& ec) override {
        std::lock_guard lock(net().mutex);
        if (!server_ && client_connection_->disconnected) return fail(ec, errc::not_connected), std::string();
        return current_user();
    }

private:
    FakeState& net() { return *host_.network; }
    static std::size_t fail(std::error_code& ec, errc e) {
        ec = e;
        return 0;
    }
    Connection* connection() { return connection_ptr().get(); }
    std::shared_ptr<Connection> connection_ptr() {
        if (!server_) return client_connection_;
        return instance_->state == FakeInstance::State::connected ? instance_->connection : nullptr;
    }
    // Why this end cannot use the connection, if it cannot.
    std::optional<errc> cut_off(Connection* c) const {
        if (!c) {  // a server end with no client: none yet, or disconnected
            return instance_->state == FakeInstance::State::listening ? errc::pipe_listening : errc::not_connected;
        }
        if (!server_ && c->disconnected) return errc::not_connected;
        return std::nullopt;
    }
    // Peek and transact: Windows refuses them on a server end without a client (ERROR_BAD_PIPE).
    std::optional<errc> cut_off_for_state(Connection* c) const {
        auto e = cut_off(c);
        if (e && !c) e = errc::bad_pipe;
        return e;
    }
    std::deque<Message>& incoming(Connection& c) const { return server_ ? c.to_server : c.to_client; }
    std::deque<Message>& outgoing(Connection& c) const { return server_ ? c.to_client : c.to_server; }
    std::size_t& unread_incoming(Connection& c) const { return server_ ? c.unread_to_server : c.unread_to_client; }
    std::size_t& unread_outgoing(Connection& c) const { return server_ ? c.unread_to_client : c.unread_to_server; }
    bool peer_closed(const Connection& c) const { return server_ ? c.client_closed : c.server_closed; }
    std::size_t& reading(Connection& c) const { return server_ ? c.reading_to_server : c.reading_to_client; }
    std::size_t peer_reading(const Connection& c) const { return server_ ? c.reading_to_client : c.reading_to_server; }
    std::uint64_t& sent_outgoing(Connection& c) const { return server_ ? c.sent_to_client : c.sent_to_server; }
    // The reading end's buffer: the client reads with the out size, the server with the in size.
    std::size_t quota() const { return server_ ? out_ : in_; }
    std::size_t take(Connection& c, Message& m, std::span<std::byte> into) {
        const auto n = std::min(m.left(), into.size());
        if (n > 0) std::memcpy(into.data(), m.data.data() + m.read, n);
        m.read += n;
        unread_incoming(c) -= n;
        return n;
    }

    FakeHost& host_;
    bool server_;
    std::string folded_name_;  // a client's: to count the name's instances
    std::shared_ptr<Connection> client_connection_;
    std::unique_ptr<FakeInstance> instance_;
    PipeType type_;
    ReadMode mode_;
    WaitMode wait_mode_ = WaitMode::wait;  // a client opens in wait mode
    bool can_read_, can_write_;
    unsigned max_;
    std::size_t in_, out_;
    std::uint64_t cancels_ = 0;
};


}  // namespace

std::unique_ptr<InstanceBackend> FakeSystem::do_create_instance(const PipeName& name, const ServerOptions& o,
                                                                std::error_code& ec) {
    std::lock_guard lock(state_->mutex);
    auto [it, created] = self_->pipes.try_emplace(name.folded_name());
    FakePipe& pipe = it->second;
    if (created) {
        pipe.options = o;
    } else {
        if (o.first_instance) return ec = errc::access_denied, nullptr;  // Windows: ERROR_ACCESS_DENIED
        if (pipe.options.type != o.type || pipe.options.access != o.access) return ec = errc::access_denied, nullptr;
        if (pipe.options.max_instances != unlimited_instances && pipe.instances.size() >= pipe.options.max_instances)
            return ec = errc::too_many_instances, nullptr;
    }
    auto end = std::make_unique<FakeEnd>(*self_, pipe, o);
    state_->notify();  // a waiting client may take it
    return end;
}

std::unique_ptr<ChannelBackend> FakeSystem::do_open_channel(const PipeName& name, const ClientOptions& o,
                                                            std::error_code& ec) {
    if (!name.is_local()) {
        ec = errc::not_supported;  // the fake has no network (docs/testing.md)
        return nullptr;
    }
    std::unique_lock lock(state_->mutex);
    if (self_->fail_next_open) {
        ec = *std::exchange(self_->fail_next_open, std::nullopt);
        return nullptr;
    }
    const auto find_pipe = [&]() -> FakePipe* {
        const auto it = self_->pipes.find(name.folded_name());
        return it == self_->pipes.end() ? nullptr : &it->second;
    };
    FakePipe* pipe = find_pipe();
    // Every fake server runs as this process's user.
    if (!pipe || (!o.server_user.empty() && o.server_user != current_user())) return ec = errc::not_found, nullptr;
    if (o.read_mode == ReadMode::message && pipe->options.type == PipeType::byte) return ec = errc::invalid_argument, nullptr;
    // Windows' order: the instance that began listening first; clients that waited longest first.
    FakeInstance* free = nullptr;
    const std::uint64_t ticket = ++pipe->next_waiter;
    pipe->waiters.push_back(ticket);
    const auto found_free = [&] {
        pipe = find_pipe();
        if (!pipe) return true;
        if (std::find(pipe->waiters.begin(), pipe->waiters.end(), ticket) == pipe->waiters.end())
            pipe->waiters.push_back(ticket);  // the name was made anew while it waited
        if (pipe->waiters.front() != ticket) return false;
        free = nullptr;
        for (auto* i : pipe->instances)
            if (i->state == FakeInstance::State::listening && (!free || i->listening_since < free->listening_since))
                free = i;
        return free != nullptr;
    };
    const Timeout wait = o.use_server_default_wait ? pipe->options.default_wait : o.wait;
    const std::uint64_t never_cancelled = 0;
    const bool got = state_->wait(lock, wait, never_cancelled, 0, found_free, ec);
    if (pipe) {
        std::erase(pipe->waiters, ticket);
        state_->notify();  // the next in line may go
    }
    if (!got) return ec = errc::pipe_busy, nullptr;
    if (!pipe) return ec = errc::not_found, nullptr;
    // As Windows: a free instance first (else busy), then the access; the instance stays free.
    if (!detail::client_access_allowed(pipe->options.access, o.access)) return ec = errc::access_denied, nullptr;
    auto c = std::make_shared<Connection>();
    if (self_->close_after) c->close_after = *std::exchange(self_->close_after, std::nullopt);
    free->connection = c;
    free->state = FakeInstance::State::connected;
    state_->notify();
    return std::make_unique<FakeEnd>(*self_, std::move(c), *pipe, *free, o, name.folded_name());
}

void FakeSystem::do_wait_for_instance(const PipeName& name, const ClientOptions& o, std::error_code& ec) {
    if (!name.is_local()) {
        ec = errc::not_supported;  // the fake has no network (docs/testing.md)
        return;
    }
    std::unique_lock lock(state_->mutex);
    const auto find_pipe = [&]() -> FakePipe* {
        const auto it = self_->pipes.find(name.folded_name());
        return it == self_->pipes.end() ? nullptr : &it->second;
    };
    FakePipe* pipe = find_pipe();
    // Every fake server runs as this process's user.
    if (!pipe || (!o.server_user.empty() && o.server_user != current_user())) return void(ec = errc::not_found);
    // Free: an instance listens that no client waiting to open will take first.
    const auto free_or_gone = [&] {
        pipe = find_pipe();
        if (!pipe) return true;
        if (!pipe->waiters.empty()) return false;
        return std::any_of(pipe->instances.begin(), pipe->instances.end(),
                           [](const FakeInstance* i) { return i->state == FakeInstance::State::listening; });
    };
    const Timeout wait = o.use_server_default_wait ? pipe->options.default_wait : o.wait;
    const std::uint64_t never_cancelled = 0;
    if (!state_->wait(lock, wait, never_cancelled, 0, free_or_gone, ec)) return;  // timed_out
    if (!pipe) ec = errc::not_found;
}

}  // namespace pipeslot::testing
