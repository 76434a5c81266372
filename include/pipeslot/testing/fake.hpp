// An in-memory IpcSystem with the full portable semantics (instances, busy,
// waiting, message boundaries, more_data, peek, transact, disconnect and close
// errors, mailslot queues, size limits, read timeouts, broadcast to every
// fake host), deterministic and without any OS resource. It passes the same
// conformance suite as the real backends. Link pipeslot_testing_dep.
#pragma once

#include <pipeslot/error.hpp>
#include <pipeslot/ipc_system.hpp>

#include <memory>
#include <string>

namespace pipeslot::testing {

struct FakeState;
struct FakeHost;

// The hosts that can reach each other's mailslots (\\*, \\HOST, \\DOMAIN).
class FakeNetwork {
public:
    FakeNetwork();
    ~FakeNetwork();
    FakeNetwork(const FakeNetwork&) = delete;
    FakeNetwork& operator=(const FakeNetwork&) = delete;

private:
    friend class FakeSystem;
    std::shared_ptr<FakeState> state_;
};

// One fake host. Objects made by it must not outlive it.
class FakeSystem final : public IpcSystem {
public:
    explicit FakeSystem(std::string host = "fakehost", std::string domain = "WORKGROUP");  // a network of its own
    FakeSystem(FakeNetwork& network, std::string host, std::string domain = "WORKGROUP");
    ~FakeSystem() override;

    std::string host_name() override { return host_; }

    // Fault injection, for users' tests of their error paths:
    // the next channel open fails with `error` (e.g. errc::pipe_busy);
    void fail_next_open(errc error);
    // the next `count` mailslot messages sent from this host are lost;
    void drop_next_datagrams(int count);
    // the next client channel opened acts as if its server died once the
    // client has sent `bytes` bytes (both ends then see broken_pipe).
    void close_after_bytes(std::size_t bytes);

protected:
    std::unique_ptr<ChannelBackend> do_open_channel(const PipeName& name, const ClientOptions& options,
                                                    std::error_code& ec) override;
    std::unique_ptr<InstanceBackend> do_create_instance(const PipeName& name, const ServerOptions& options,
                                                        std::error_code& ec) override;
    std::unique_ptr<MailslotBackend> do_create_mailslot(const MailslotName& name, const MailslotOptions& options,
                                                        std::error_code& ec) override;
    std::unique_ptr<BroadcasterBackend> do_open_broadcaster(const MailslotName& name, std::error_code& ec) override;
    PipeStreams do_create_pipe(const PipeOptions& options, std::error_code& ec) override;
    void do_wait_for_instance(const PipeName& name, const ClientOptions& options, std::error_code& ec) override;

private:
    std::shared_ptr<FakeState> state_;
    std::string host_;
    std::unique_ptr<FakeHost> self_;
};

}  // namespace pipeslot::testing
