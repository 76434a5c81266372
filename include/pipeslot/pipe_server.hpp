// The classic multithreaded named-pipe server, ready made: N instances of a
// name served by N threads (so N clients at once), calling a handler per
// connection or per request message, with a clean stop. Clients get the
// instances in Windows' order; the thread that serves one is the one idle
// for the shortest time where the platform can tell (POSIX).
#pragma once

#include <pipeslot/export.hpp>
#include <pipeslot/ipc_system.hpp>
#include <pipeslot/message_channel.hpp>

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>
#include <vector>

namespace pipeslot {

class PIPESLOT_API PipeServer {
public:
    // Called on a server thread with a connected client; when it returns
    // the client is disconnected and the instance waits for the next one.
    using ConnectionHandler = std::function<void(PipeInstance&)>;
    // Called for each request message; its result is sent back as the reply.
    using RequestHandler = std::function<std::vector<std::byte>(std::span<const std::byte> request)>;

    PipeServer();
    PipeServer(PipeServer&&) noexcept;
    PipeServer& operator=(PipeServer&&) noexcept;
    ~PipeServer();  // stops

    // Creates all `instances` first (so their errors come back here), then
    // starts as many threads.
    static PipeServer start(std::string_view name, const ServerOptions& options, std::size_t instances,
                            ConnectionHandler handler, std::error_code& ec, IpcSystem& system = native_ipc());
    static PipeServer start(std::string_view name, const ServerOptions& options, std::size_t instances,
                            RequestHandler handler, std::error_code& ec, IpcSystem& system = native_ipc());

    // Cancels every wait and read of the instances, and joins the threads. A
    // handler busy in its own code is waited for.
    void stop() noexcept;
    bool running() const noexcept;

private:
    struct State;
    std::unique_ptr<State> state_;
};

}  // namespace pipeslot
