// GoogleMock mocks of every pipeslot interface, ready for EXPECT_CALL.
// Link pipeslot_testing_dep (production code links pipeslot_dep, without GoogleMock).
//
//   auto backend = std::make_unique<MockChannelBackend>();
//   EXPECT_CALL(*backend, send(_, _, _)).WillOnce(Return(5));
//   MessageChannel channel(std::move(backend));   // what the code under test gets
//
//   MockIpcSystem ipc;                           // or the whole system
//   EXPECT_CALL(ipc, do_open_channel(_, _, _)).WillOnce(...);
#pragma once

#include <pipeslot/backend.hpp>
#include <pipeslot/ipc_system.hpp>
#include <pipeslot/stream.hpp>

#include <gmock/gmock.h>

namespace pipeslot::testing {

class MockByteReader : public ByteReader {
public:
    using ByteReader::read;
    MOCK_METHOD(std::size_t, read, (std::span<std::byte>, Timeout, std::error_code&), (override));
    MOCK_METHOD(void, close, (), (noexcept, override));
    MOCK_METHOD(bool, is_open, (), (const, noexcept, override));
};

class MockByteWriter : public ByteWriter {
public:
    using ByteWriter::write;
    MOCK_METHOD(std::size_t, write, (std::span<const std::byte>, Timeout, std::error_code&), (override));
    MOCK_METHOD(void, close, (), (noexcept, override));
    MOCK_METHOD(bool, is_open, (), (const, noexcept, override));
};

// The ChannelBackend functions, mocked in both channel mocks.
#define PIPESLOT_MOCK_CHANNEL_BACKEND                                                                                 \
    MOCK_METHOD(std::size_t, receive, (std::span<std::byte>, Timeout, std::error_code&), (override));                  \
    MOCK_METHOD(std::size_t, send, (std::span<const std::byte>, Timeout, std::error_code&), (override));               \
    MOCK_METHOD(std::size_t, send_messages, (std::span<const std::span<const std::byte>>, Timeout, std::error_code&),  \
                (override));                                                                                           \
    MOCK_METHOD(PeekResult, peek, (std::span<std::byte>, std::error_code&), (override));                               \
    MOCK_METHOD(void, flush, (std::error_code&), (override));                                                          \
    MOCK_METHOD(std::size_t, transact, (std::span<const std::byte>, std::span<std::byte>, Timeout, std::error_code&), \
                (override));                                                                                           \
    MOCK_METHOD(void, set_read_mode, (ReadMode, std::error_code&), (override));                                        \
    MOCK_METHOD(void, set_wait_mode, (WaitMode, std::error_code&), (override));                                        \
    MOCK_METHOD(ChannelInfo, info, (std::error_code&), (override));                                                    \
    MOCK_METHOD(void, cancel, (), (noexcept, override));                                                               \
    MOCK_METHOD(std::int64_t, server_process_id, (std::error_code&), (override));                                      \
    MOCK_METHOD(std::string, server_user, (std::error_code&), (override));                                            \
    MOCK_METHOD(std::int64_t, client_process_id, (std::error_code&), (override))

class MockChannelBackend : public ChannelBackend {
public:
    PIPESLOT_MOCK_CHANNEL_BACKEND;
};

class MockInstanceBackend : public InstanceBackend {
public:
    PIPESLOT_MOCK_CHANNEL_BACKEND;
    MOCK_METHOD(void, accept, (Timeout, std::error_code&), (override));
    MOCK_METHOD(void, disconnect, (std::error_code&), (override));
    MOCK_METHOD(std::string, client_user, (std::error_code&), (override));
    MOCK_METHOD(std::string, client_computer_name, (std::error_code&), (override));
};

class MockMailslotBackend : public MailslotBackend {
public:
    MOCK_METHOD(std::size_t, receive, (std::span<std::byte>, std::error_code&), (override));
    MOCK_METHOD(MailslotInfo, info, (std::error_code&), (override));
    MOCK_METHOD(void, set_read_timeout, (Timeout, std::error_code&), (override));
    MOCK_METHOD(void, cancel, (), (noexcept, override));
};

class MockBroadcasterBackend : public BroadcasterBackend {
public:
    MOCK_METHOD(void, send, (std::span<const std::byte>, Timeout, std::error_code&), (override));
};

// Its do_ functions get arguments already checked by IpcSystem's public ones.
class MockIpcSystem : public IpcSystem {
public:
    MOCK_METHOD(std::string, host_name, (), (override));
    MOCK_METHOD(std::unique_ptr<ChannelBackend>, do_open_channel,
                (const PipeName&, const ClientOptions&, std::error_code&), (override));
    MOCK_METHOD(std::unique_ptr<InstanceBackend>, do_create_instance,
                (const PipeName&, const ServerOptions&, std::error_code&), (override));
    MOCK_METHOD(std::unique_ptr<MailslotBackend>, do_create_mailslot,
                (const MailslotName&, const MailslotOptions&, std::error_code&), (override));
    MOCK_METHOD(std::unique_ptr<BroadcasterBackend>, do_open_broadcaster, (const MailslotName&, std::error_code&),
                (override));
    MOCK_METHOD(PipeStreams, do_create_pipe, (const PipeOptions&, std::error_code&), (override));
    MOCK_METHOD(void, do_wait_for_instance, (const PipeName&, const ClientOptions&, std::error_code&), (override));
};

// An action that sets the error_code& argument number N (0-based) and returns `value`.
ACTION_TEMPLATE(SetErrorAndReturn, HAS_1_TEMPLATE_PARAMS(int, N), AND_2_VALUE_PARAMS(error, value)) {
    std::get<N>(args) = make_error_code(error);
    return value;
}

}  // namespace pipeslot::testing
