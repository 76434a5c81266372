// The gateway's TLS 1.3 (docs/gateway.md, "Security"): who gets in with
// which credentials, what the server learns of them, and what a gateway
// configuration must hold. Loopback only; certificates from support/pki.
#include "../support/pki.hpp"
#include "../support/support.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <mutex>

namespace pipeslot {
namespace {

using test::generous;

std::vector<std::byte> key_of(const std::string& hex_file) {
    std::ifstream in(hex_file);
    std::string text;
    in >> text;
    std::vector<std::byte> key;
    for (std::size_t i = 0; i + 1 < text.size(); i += 2)
        key.push_back(static_cast<std::byte>(std::stoi(text.substr(i, 2), nullptr, 16)));
    return key;
}

class GatewayTls : public ::testing::Test {
protected:
    void SetUp() override {
        if (test::test_pki().directory.empty()) GTEST_SKIP() << "cannot make test certificates (openssl)";
        name_ = test::unique_pipe_name("tls");
        ServerOptions o;
        o.reject_remote_clients = false;
        o.max_instances = 4;
        for (int i = 0; i < 2; ++i) servers_.push_back(PipeInstance::create(name_, o));
    }
    void TearDown() override { (void)set_gateway_client_options({}); }  // the process's default again

    const test::TestPki& pki() const { return test::test_pki(); }

    GatewayOptions certificate_gateway() const {
        GatewayOptions o;
        o.port = 0;
        o.certificate_file = pki().gateway.certificate;
        o.private_key_file = pki().gateway.key;
        o.client_ca_file = pki().gateway.ca;
        o.log = [this](std::string_view line) {
            std::lock_guard lock(log_mutex_);
            log_.emplace_back(line);
        };
        return o;
    }
    GatewayClientOptions certificate_client() const {
        GatewayClientOptions c;
        c.ca_file = pki().client.ca;
        c.certificate_file = pki().client.certificate;
        c.private_key_file = pki().client.key;
        return c;
    }
    std::string remote(const std::string& host = "127.0.0.1") const {
        return "\\\\" + host + "\\pipe\\" + name_.substr(name_.rfind('\\') + 1);
    }
    std::error_code open_error(const Gateway& g, const std::string& host = "127.0.0.1") {
        ClientOptions o;
        o.gateway_port = g.port();
        std::error_code ec;
        auto c = MessageChannel::open(remote(host), o, ec);
        return ec;
    }
    // The user the server sees for a remote client that got in.
    std::string user_seen(const Gateway& g) {
        ClientOptions o;
        o.gateway_port = g.port();
        auto client = MessageChannel::open(remote(), o);
        std::error_code ec;
        servers_[0].accept(generous, ec);
        EXPECT_EQ(ec, errc::already_connected) << ec.message();
        const auto user = servers_[0].client_user(ec);
        EXPECT_FALSE(ec) << ec.message();
        client.send(test::as_bytes(std::string("hi")), generous);
        std::vector<std::byte> buffer(8);
        EXPECT_EQ(servers_[0].receive(buffer, generous, ec), 2u) << "carried, encrypted";
        return user;
    }
    bool logged(const std::string& part) const {
        std::lock_guard lock(log_mutex_);
        for (const auto& line : log_)
            if (line.find(part) != std::string::npos) return true;
        return false;
    }

    std::string name_;
    std::vector<PipeInstance> servers_;
    mutable std::mutex log_mutex_;
    mutable std::vector<std::string> log_;
};

TEST_F(GatewayTls, AClientCertificateFromTheClientCaGetsInAndIsTheClientsUser) {
    auto g = Gateway::start(certificate_gateway());
    ASSERT_FALSE(set_gateway_client_options(certificate_client()));
    EXPECT_EQ(user_seen(g), "CN=client-alice,O=pipeslot tests");
}

TEST_F(GatewayTls, APreSharedKeyGetsInWithoutCertificatesAndItsIdentityIsTheUser) {
    GatewayOptions o;
    o.port = 0;
    o.psks["alice"] = key_of(pki().psk_file);
    auto g = Gateway::start(o);
    GatewayClientOptions c;
    c.psk_identity = "alice";
    c.psk = key_of(pki().psk_file);
    ASSERT_FALSE(set_gateway_client_options(c));
    EXPECT_EQ(user_seen(g), "psk:alice");
}

TEST_F(GatewayTls, AWrongKeyOrAnUnknownIdentityIsRefused) {
    GatewayOptions o = certificate_gateway();
    o.psks["alice"] = key_of(pki().psk_file);
    auto g = Gateway::start(o);
    GatewayClientOptions c;
    c.psk_identity = "alice";
    c.psk = key_of(pki().psk_file);
    c.psk[0] ^= std::byte{1};
    ASSERT_FALSE(set_gateway_client_options(c));
    EXPECT_EQ(open_error(g), errc::access_denied) << "the right identity with a wrong key";
    c.psk = key_of(pki().psk_file);
    c.psk_identity = "mallory";
    ASSERT_FALSE(set_gateway_client_options(c));
    EXPECT_EQ(open_error(g), errc::access_denied) << "an identity the gateway does not know (it then wants a certificate)";
    EXPECT_TRUE(logged("TLS handshake failed"));
}

TEST_F(GatewayTls, ACertificateFromAnotherCaIsRefusedEitherWay) {
    auto g = Gateway::start(certificate_gateway());
    auto c = certificate_client();
    c.certificate_file = pki().stranger_client.certificate;
    c.private_key_file = pki().stranger_client.key;
    ASSERT_FALSE(set_gateway_client_options(c));
    EXPECT_EQ(open_error(g), errc::access_denied) << "a client the gateway's CA did not sign";
    auto o = certificate_gateway();
    o.certificate_file = pki().stranger_gateway.certificate;
    o.private_key_file = pki().stranger_gateway.key;
    auto stranger = Gateway::start(o);
    ASSERT_FALSE(set_gateway_client_options(certificate_client()));
    EXPECT_EQ(open_error(stranger), errc::access_denied) << "a gateway the client's CA did not sign";
    EXPECT_EQ(open_error(g), std::error_code{}) << "the right pair still works";
}

TEST_F(GatewayTls, TheGatewaysCertificateMustNameTheServerAsWritten) {
    auto o = certificate_gateway();
    o.address = "127.0.0.2";  // loopback too, but not in the certificate's names
    o.allowed_clients = {"127.0.0.0/8"};
    auto g = Gateway::start(o);
    ASSERT_FALSE(set_gateway_client_options(certificate_client()));
    EXPECT_EQ(open_error(g, "127.0.0.2"), errc::access_denied);
}

TEST_F(GatewayTls, PlaintextOnlyFromLoopbackAndOnlyWhereConfigured) {
    auto g = Gateway::start(certificate_gateway());
    GatewayClientOptions plain;
    plain.plaintext_on_loopback = true;
    ASSERT_FALSE(set_gateway_client_options(plain));
    EXPECT_EQ(open_error(g), errc::access_denied) << "a gateway without plaintext_on_loopback";
    EXPECT_TRUE(logged("plaintext, and TLS is required"));
    ASSERT_FALSE(set_gateway_client_options({}));
    EXPECT_EQ(open_error(g), errc::access_denied) << "a client with neither TLS credentials nor plaintext";

    auto both = certificate_gateway();
    both.plaintext_on_loopback = true;
    auto g2 = Gateway::start(both);
    ASSERT_FALSE(set_gateway_client_options(plain));
    EXPECT_EQ(open_error(g2), std::error_code{}) << "plaintext on loopback, configured on both ends";
    ASSERT_FALSE(set_gateway_client_options(certificate_client()));
    EXPECT_EQ(open_error(g2), std::error_code{}) << "and TLS beside it";
}

TEST_F(GatewayTls, AGatewayConfigurationNothingCouldUseSafelyIsRefused) {
    std::error_code ec;
    GatewayOptions none;
    none.port = 0;
    Gateway::start(none, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "neither TLS nor plaintext";
    auto no_client_auth = certificate_gateway();
    no_client_auth.client_ca_file.clear();
    Gateway::start(no_client_auth, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "a certificate, and no way for clients to prove who they are";
    auto no_key = certificate_gateway();
    no_key.private_key_file.clear();
    Gateway::start(no_key, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    auto missing = certificate_gateway();
    missing.certificate_file = pki().directory + "/no-such.pem";
    Gateway::start(missing, ec);
    EXPECT_EQ(ec, errc::invalid_argument);
    GatewayOptions short_key;
    short_key.port = 0;
    short_key.psks["alice"] = std::vector<std::byte>(16);
    Gateway::start(short_key, ec);
    EXPECT_EQ(ec, errc::invalid_argument) << "a key of 16 bytes";

    GatewayClientOptions half;
    half.certificate_file = pki().client.certificate;
    EXPECT_EQ(set_gateway_client_options(half), errc::invalid_argument) << "a certificate without its key";
    GatewayClientOptions bad_ca;
    bad_ca.ca_file = pki().directory + "/no-such.pem";
    EXPECT_EQ(set_gateway_client_options(bad_ca), errc::invalid_argument);
}

}  // namespace
}  // namespace pipeslot
