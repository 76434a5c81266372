// An example application: the client of a job server. It locates the server
// by broadcast (the server announces itself on a mailslot), connects to its
// named pipe, retrying while every instance is busy, and sends one job.
// It takes the IPC system as a parameter, so its tests can hand it the
// in-memory fake or a mock instead of the real one.
#pragma once

#include <pipeslot/pipeslot.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <system_error>

namespace jobs {

struct ClientOptions {
    std::string announce_slot = std::string(pipeslot::default_listen_slot);
    std::chrono::milliseconds locate_for{500};
    int attempts = 3;                            // tries while the server is busy
    std::chrono::milliseconds wait_per_try{200};  // waiting for a free instance, each try
    std::chrono::milliseconds reply_within{5000};
};

class JobClient {
public:
    explicit JobClient(pipeslot::IpcSystem& ipc, ClientOptions options = {});

    // The server's pipe, found by listening to announcements; cached.
    std::optional<std::string> locate(std::error_code& ec);
    // Sends `job` to the server and returns its reply.
    std::string run(const std::string& job, std::error_code& ec);

private:
    pipeslot::MessageChannel connect(const std::string& pipe, std::error_code& ec);

    pipeslot::IpcSystem& ipc_;
    ClientOptions options_;
    std::optional<std::string> server_;
};

}  // namespace jobs
