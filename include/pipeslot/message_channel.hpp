// MessageChannel: named pipes. A server creates instances of a name; a client
// opens the name and is connected to one free instance. Full duplex (or one
// way), byte or message mode, with the Win32 semantics on every backend.
#pragma once

#include <pipeslot/event_source.hpp>
#include <pipeslot/export.hpp>
#include <pipeslot/name.hpp>
#include <pipeslot/stream.hpp>
#include <pipeslot/timeout.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace pipeslot {

class ChannelBackend;
class InstanceBackend;

enum class PipeType { byte, message };  // what the writer's sends are: a stream, or messages
enum class ReadMode { byte, message };  // how this end reads: across boundaries, or one message a call
// Whether this end's calls wait (PIPE_WAIT) or return at once (PIPE_NOWAIT):
// then a read with nothing to read is no_data, an accept without a client
// pipe_listening, and a write that does not fit the quota writes nothing and
// succeeds (on a byte pipe a read waiting at the other end still takes its
// part). Transact, flush and peek are not affected. Windows keeps nowait for
// compatibility with LAN Manager 2.0; it is here so that code written for it
// behaves the same.
enum class WaitMode { wait, nowait };
enum class PipeAccess { inbound, outbound, duplex };  // the direction(s) data flows, seen from the server

inline constexpr unsigned unlimited_instances = 255;  // PIPE_UNLIMITED_INSTANCES
inline constexpr unsigned max_limited_instances = 254;
// The largest message any backend carries; larger sends are errc::message_too_large.
inline constexpr std::size_t max_message_size = std::size_t{1} << 30;
// The longest message receive_message takes by default (ServerOptions and
// ClientOptions::max_message_size): what one peer can make this end allocate.
inline constexpr std::size_t default_max_message_size = std::size_t{64} << 20;

struct ServerOptions {
    unsigned max_instances = unlimited_instances;  // 1..254, or unlimited_instances
    PipeType type = PipeType::message;
    ReadMode read_mode = ReadMode::message;        // the server end's; byte type allows byte only
    PipeAccess access = PipeAccess::duplex;
    std::size_t in_buffer_size = 65536;            // hints
    std::size_t out_buffer_size = 65536;
    Timeout default_wait = std::chrono::milliseconds(50);  // what clients wait when told to use the default
    bool first_instance = false;                   // fail with name_in_use if the name exists
    bool reject_remote_clients = true;
    // POSIX: by default only the creating user can connect; true lets any
    // local user connect. (Windows keeps its default security descriptor.)
    bool allow_other_users = false;
    WaitMode wait_mode = WaitMode::wait;  // the server end's (PIPE_NOWAIT); a client's is set after open
    // The longest message receive_message takes (up to max_message_size); a
    // longer one is refused, read and dropped without being kept: see receive_message.
    std::size_t max_message_size = default_max_message_size;
    // Serves Windows clients' SMB opens of \\HOST\pipe\NAME through Samba's
    // smbd (docs/samba.md): POSIX publishes the pipe where smbd looks for it.
    // Needs reject_remote_clients = false. Windows' own SMB server already
    // serves every pipe that accepts remote clients: there it changes nothing.
    bool publish_smb = false;
    // Where smbd looks: its "ncalrpc dir" followed by /np. Empty:
    // $PIPESLOT_SMB_DIRECTORY, else /run/samba/ncalrpc/np.
    std::string smb_directory = {};
};

// none: connects to an instance (of any direction) and may only ask state (info, process ids).
enum class ClientAccess { read, write, read_write, none };

struct ClientOptions {
    ClientAccess access = ClientAccess::read_write;
    // Read mode of this end; unset: message for a message pipe, byte for a byte pipe.
    std::optional<ReadMode> read_mode;
    // How long to wait for a free instance when all are busy (WaitNamedPipe):
    // none() fails at once with pipe_busy; use_server_default waits the
    // server's default_wait instead of `wait`.
    Timeout wait = Timeout::none();
    bool use_server_default_wait = false;
    // Whose pipe: empty for this user's own. POSIX: another user's pipe (one
    // created with allow_other_users) is reached only when named here, as a
    // uid or a user name. Windows: when set (a SID string or an account
    // name), a pipe whose server runs as another user is not_found.
    std::string server_user;
    // As ServerOptions::max_message_size, for what this client receives.
    std::size_t max_message_size = default_max_message_size;
    // \\SERVER\pipe\NAME on POSIX: the TCP port of SERVER's gateway
    // (pipeslot/gateway.hpp); 0: PIPESLOT_GATEWAY_PORT, else 4455. Windows
    // reaches remote pipes over SMB and does not use it.
    std::uint16_t gateway_port = 0;
};

struct PeekResult {
    std::size_t copied = 0;           // bytes copied into the buffer given to peek
    std::size_t total_available = 0;  // bytes readable now, all messages together
    std::size_t left_in_message = 0;  // bytes of the current message beyond those copied (0 on a byte pipe)
};

struct ChannelInfo {
    PipeType type = PipeType::byte;
    ReadMode read_mode = ReadMode::byte;
    unsigned max_instances = 0;
    std::size_t in_buffer_size = 0;
    std::size_t out_buffer_size = 0;
    bool is_server = false;
    unsigned current_instances = 0;  // of the name, now (GetNamedPipeHandleState); 0 once none is left
    WaitMode wait_mode = WaitMode::wait;  // this end's
};

class PIPESLOT_API MessageChannel : public ByteReader, public ByteWriter {
public:
    MessageChannel() noexcept;
    // A channel over any backend: the fake's, a mock, one of your own.
    explicit MessageChannel(std::unique_ptr<ChannelBackend> backend) noexcept;
    MessageChannel(MessageChannel&&) noexcept;
    MessageChannel& operator=(MessageChannel&&) noexcept;
    ~MessageChannel() override;

    // Connects to a free instance of `name`: errc::pipe_busy if all are taken
    // (after waiting as options say), errc::not_found if none exists,
    // errc::invalid_name for a bad name, errc::access_denied if the pipe's
    // direction does not allow the access asked for. (The native system's;
    // code that should also run on a fake takes an IpcSystem&.)
    static MessageChannel open(std::string_view name, const ClientOptions& options, std::error_code& ec);
    static MessageChannel open(std::string_view name, const ClientOptions& options = {});  // throws

    // Message read mode: one message per call; if it does not fit, the first
    // part and errc::more_data, the rest in the next calls. Byte read mode:
    // what is there, across message boundaries. After the other end has
    // closed and everything was read: errc::broken_pipe; after the server
    // disconnected this client: errc::not_connected.
    std::size_t receive(std::span<std::byte> buffer, Timeout timeout, std::error_code& ec);
    // The next message whole, up to the options' max_message_size (a channel
    // made from a backend: default_max_message_size). A longer one is
    // errc::message_too_large: its size is learnt from the first part (peek),
    // the rest read and dropped in small parts, so it is never held whole and
    // the channel goes on at the next message. Byte read mode: what is there,
    // up to the limit.
    std::vector<std::byte> receive_message(Timeout timeout, std::error_code& ec);
    std::vector<std::byte> receive_message(Timeout timeout = Timeout::forever());  // throws
    // One message (or bytes, on a byte pipe). Returns the bytes sent. After the
    // other end closed: errc::pipe_closing (Windows' ERROR_NO_DATA).
    std::size_t send(std::span<const std::byte> data, Timeout timeout, std::error_code& ec);
    std::size_t send(std::span<const std::byte> data, Timeout timeout = Timeout::forever());  // throws
    // Several messages in order, each delivered whole, within one timeout, in
    // as few system calls as the platform allows (on POSIX one for all that
    // fit in the socket's buffer; on Windows one WriteFile each). Returns how
    // many were sent whole; on an error, ec says why the next one was not.
    std::size_t send_messages(std::span<const std::span<const std::byte>> messages, Timeout timeout,
                              std::error_code& ec);
    std::size_t send_messages(std::span<const std::span<const std::byte>> messages,
                              Timeout timeout = Timeout::forever());  // throws
    // Never blocks; buffer may be empty to ask for the counts only. The
    // counts include messages whose writes still wait for the quota.
    PeekResult peek(std::span<std::byte> buffer, std::error_code& ec);
    // Waits until the other end has taken everything this end sent
    // (FlushFileBuffers). The other end closing first: errc::broken_pipe;
    // already closed with nothing left: success. A server end without a
    // client: success; a client its server has disconnected: not_connected.
    // cancel() ends it (errc::cancelled).
    void flush(std::error_code& ec);
    void flush();  // throws
    // Sends one message and receives one reply (TransactNamedPipe). This end
    // must be in message read mode (else bad_pipe), hold no unread data (else
    // pipe_busy) and, on a server end, have a client (else bad_pipe).
    std::size_t transact(std::span<const std::byte> request, std::span<std::byte> reply, Timeout timeout,
                         std::error_code& ec);

    void set_read_mode(ReadMode mode, std::error_code& ec);
    // SetNamedPipeHandleState's PIPE_WAIT / PIPE_NOWAIT, for this end only.
    void set_wait_mode(WaitMode mode, std::error_code& ec);
    ChannelInfo info(std::error_code& ec) const;

    // The process and the user of the server end (GetNamedPipeServerProcessId);
    // on the server end, this process and its user. On a client the server
    // has disconnected: errc::not_connected.
    std::int64_t server_process_id(std::error_code& ec) const;
    std::string server_user(std::error_code& ec) const;
    // The process of the client end (GetNamedPipeClientProcessId): on a client,
    // this process (not_connected once disconnected); on a server end without a
    // client, errc::not_found (ERROR_NOT_FOUND).
    std::int64_t client_process_id(std::error_code& ec) const;

    // Makes the operations blocked on this channel in other threads return
    // errc::cancelled. Operations started afterwards are not affected.
    void cancel() noexcept;

    // What an event loop waits on before it tries again an operation that,
    // in WaitMode::nowait, found nothing to do (pipeslot/asio/).
    EventSource event_source(ChannelEvent event) const;
    // As send(), but waiting as in WaitMode::wait whatever this end's mode,
    // as TransactNamedPipe's write does: for the asynchronous layer's
    // messages larger than the quota, sent from a thread of their own (on
    // POSIX; on Windows its overlapped WriteFile waits). Windows cannot wait
    // on a PIPE_NOWAIT handle: not_supported there in that mode.
    std::size_t send_waiting(std::span<const std::byte> data, Timeout timeout, std::error_code& ec);

    // ByteReader / ByteWriter: receive and send.
    std::size_t read(std::span<std::byte> buffer, Timeout timeout, std::error_code& ec) override {
        return receive(buffer, timeout, ec);
    }
    std::size_t write(std::span<const std::byte> data, Timeout timeout, std::error_code& ec) override {
        return send(data, timeout, ec);
    }
    using ByteReader::read;
    using ByteWriter::write;
    void close() noexcept override;
    bool is_open() const noexcept override { return impl_ != nullptr; }

protected:
    bool check_open(std::error_code& ec) const;
    std::unique_ptr<ChannelBackend> impl_;

    // Reads what is left of a refused message and forgets it; false (ec set)
    // if the timeout or a cancel came first: the next receive goes on with it.
    bool drop_rest_of_message(Timeout timeout, std::error_code& ec);
    bool dropping_ = false;  // a refused message's rest is still to be read

private:
    friend class IpcSystem;  // sets the limit from the options
    std::size_t max_incoming_ = default_max_message_size;
};

// The server's end of one instance of a named pipe.
class PIPESLOT_API PipeInstance : public MessageChannel {
public:
    PipeInstance() noexcept = default;
    explicit PipeInstance(std::unique_ptr<InstanceBackend> backend) noexcept;

    // A new instance, ready for a client at once. errc::too_many_instances
    // when the name has max_instances already; errc::access_denied with
    // first_instance if the name exists (as Windows); errc::access_denied if the options
    // differ from the existing instances' type, access or max_instances.
    static PipeInstance create(std::string_view name, const ServerOptions& options, std::error_code& ec);
    static PipeInstance create(std::string_view name, const ServerOptions& options = {});  // throws

    // Waits for a client (ConnectNamedPipe). A client that connected before
    // the call is reported as errc::already_connected, and one that connected
    // and already closed as errc::no_data (both as Windows does); either way
    // the instance then has that client. Cancellable.
    void accept(Timeout timeout, std::error_code& ec);
    // Drops the client; its unread data is discarded and it sees
    // errc::not_connected. accept() then serves the next client.
    void disconnect(std::error_code& ec);

    // The client's user: a uid on POSIX, a SID string on Windows.
    std::string client_user(std::error_code& ec) const;
    // Where a remote client is (GetNamedPipeClientComputerName): on Windows
    // the name its SMB server reports; on POSIX the address the gateway or
    // smbd saw it connect from. errc::pipe_local for a client on this
    // computer, and for an instance without a client (as Windows).
    std::string client_computer_name(std::error_code& ec) const;

private:
    friend class PipeServer;  // waits on its instances together where the platform can
    InstanceBackend* instance() const noexcept;
};

// Open, send one message, receive one reply, close (CallNamedPipe). The
// timeout bounds the whole call, waiting for a free instance included.
PIPESLOT_API std::size_t call(std::string_view name, std::span<const std::byte> request, std::span<std::byte> reply,
                              Timeout timeout, std::error_code& ec);
// The same, waiting for a free instance as `open` says (its wait, or with
// use_server_default_wait the server's default_wait: CallNamedPipe's
// NMPWAIT_USE_DEFAULT_WAIT); `timeout` bounds the exchange after the open.
PIPESLOT_API std::size_t call(std::string_view name, std::span<const std::byte> request, std::span<std::byte> reply,
                              const ClientOptions& open, Timeout timeout, std::error_code& ec);

// Waits until an instance of `name` is free, without connecting to it
// (WaitNamedPipe): as long as options.wait, or the server's default_wait with
// options.use_server_default_wait. errc::not_found at once if the name has no
// instance, errc::timed_out if none frees up in time. The free instance is not
// reserved: an open after it may find it taken again (as on Windows).
PIPESLOT_API void wait_for_instance(std::string_view name, const ClientOptions& options, std::error_code& ec);

// The user running this process, in the form client_user() reports.
PIPESLOT_API std::string current_user();

}  // namespace pipeslot
