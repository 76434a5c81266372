#include "job_client.hpp"

namespace jobs {

using pipeslot::errc;

JobClient::JobClient(pipeslot::IpcSystem& ipc, ClientOptions options) : ipc_(ipc), options_(std::move(options)) {}

std::optional<std::string> JobClient::locate(std::error_code& ec) {
    ec.clear();
    if (server_) return server_;
    const auto found = pipeslot::locate_servers(options_.announce_slot, options_.locate_for, ec, ipc_);
    if (ec) return std::nullopt;
    if (found.empty()) {
        ec = errc::not_found;
        return std::nullopt;
    }
    server_ = found.front().pipe;
    return server_;
}

pipeslot::MessageChannel JobClient::connect(const std::string& pipe, std::error_code& ec) {
    pipeslot::ClientOptions options;
    options.wait = options_.wait_per_try;
    for (int attempt = 1;; ++attempt) {
        auto channel = ipc_.open_channel(pipe, options, ec);
        if (ec != errc::pipe_busy || attempt >= options_.attempts) return channel;
    }
}

std::string JobClient::run(const std::string& job, std::error_code& ec) {
    const auto pipe = locate(ec);
    if (!pipe) return {};
    auto channel = connect(*pipe, ec);
    if (ec == errc::not_found) server_.reset();  // it went away: locate it again next time
    if (ec) return {};
    channel.send(std::as_bytes(std::span(job)), options_.reply_within, ec);
    if (ec) return {};
    const auto reply = channel.receive_message(options_.reply_within, ec);
    return {reinterpret_cast<const char*>(reply.data()), reply.size()};
}

}  // namespace jobs
