// Windows fronts its named pipes to the network itself (the SMB server), so a
// pipeslot gateway is the POSIX emulation's: on Windows start() says so.
#include "../common/throw.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/gateway.hpp>

namespace pipeslot {

struct Gateway::Impl {};

std::error_code set_gateway_client_options(const GatewayClientOptions& options) {
    if (options.certificate_file.empty() != options.private_key_file.empty() ||
        options.psk_identity.empty() != options.psk.empty())
        return errc::invalid_argument;
    return {};  // Windows: SMB authenticates remote opens itself
}

Gateway::Gateway() noexcept = default;
Gateway::~Gateway() = default;
Gateway::Gateway(Gateway&&) noexcept = default;
Gateway& Gateway::operator=(Gateway&&) noexcept = default;

Gateway Gateway::start(const GatewayOptions&, std::error_code& ec) {
    ec = errc::not_supported;  // Windows: remote clients reach pipes over SMB
    return {};
}

Gateway Gateway::start(const GatewayOptions& options) {
    std::error_code ec;
    auto g = start(options, ec);
    detail::throw_if(ec, "pipeslot gateway");
    return g;
}

std::uint16_t Gateway::port() const noexcept { return 0; }
std::size_t Gateway::connections() const noexcept { return 0; }
void Gateway::stop_accepting() noexcept {}
bool Gateway::wait_idle(Timeout) noexcept { return true; }
void Gateway::stop() noexcept {}

}  // namespace pipeslot
