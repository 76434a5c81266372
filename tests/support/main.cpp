// The test runner's entry point: GoogleTest, a line saying which backend the
// suite runs against, and (POSIX) private directories for this run only.
#include "support.hpp"
#ifndef _WIN32
#include "pki.hpp"
#endif

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <filesystem>

#ifndef _WIN32
#include <sys/stat.h>
#include <unistd.h>

namespace {
// A runtime directory long enough that socket paths in it exceed the 108-byte
// limit, so every named-pipe test also covers that; and a shared directory.
std::filesystem::path make_test_directories() {
    char base_template[] = "/tmp/pipeslot-tests-XXXXXX";
    const char* base = ::mkdtemp(base_template);
    if (!base) return {};
    ::chmod(base, 0755);  // other users (root-only tests) must reach the shared directory
    const auto runtime = std::filesystem::path(base) / ("runtime-" + std::string(60, 'r'));
    const auto shared = std::filesystem::path(base) / "shared";
    ::mkdir(runtime.c_str(), 0700);
    ::mkdir(shared.c_str(), 01777);
    ::chmod(shared.c_str(), 01777);
    if (!std::getenv("PIPESLOT_RUNTIME_DIR")) ::setenv("PIPESLOT_RUNTIME_DIR", runtime.c_str(), 1);
    if (!std::getenv("PIPESLOT_SHARED_DIR")) ::setenv("PIPESLOT_SHARED_DIR", shared.c_str(), 1);
    // A port of this run's own, and loopback only (also set by meson's test environment).
    if (!std::getenv("PIPESLOT_MAILSLOT_PORT"))
        ::setenv("PIPESLOT_MAILSLOT_PORT", std::to_string(20000 + ::getpid() % 20000).c_str(), 1);
    ::setenv("PIPESLOT_MAILSLOT_INTERFACES", "lo", 0);
    return base;
}
}  // namespace
#endif

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    [[maybe_unused]] bool remote = false, remote_tls = false;  // POSIX: Windows reaches remote pipes over SMB
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--fake") pipeslot::test::use_fake();
        if (std::string(argv[i]) == "--remote") remote = true;
        if (std::string(argv[i]) == "--remote-tls") remote = remote_tls = true;
    }
    if (pipeslot::test::using_fake()) std::printf("pipeslot tests: the conformance suite against the in-memory fake\n");
#ifdef _WIN32
    std::printf("pipeslot tests: win32 backend%s\n",
                pipeslot::test::running_under_wine() ? " under Wine" : " on Windows");
    return RUN_ALL_TESTS();
#else
    std::printf("pipeslot tests: posix backend\n");
    const auto directories = make_test_directories();
    pipeslot::Gateway gateway;
    if (remote) {  // every client through a gateway on loopback, as a client on another host would be
        pipeslot::GatewayOptions options;
        options.port = 0;
        pipeslot::GatewayClientOptions clients;
        if (remote_tls) {  // TLS 1.3 both ways, the client with a certificate
            const auto& pki = pipeslot::test::test_pki();
            if (pki.directory.empty()) {
                std::printf("pipeslot tests: cannot make test certificates (is openssl installed?)\n");
                return 1;
            }
            options.certificate_file = pki.gateway.certificate;
            options.private_key_file = pki.gateway.key;
            options.client_ca_file = pki.gateway.ca;
            clients.ca_file = pki.client.ca;
            clients.certificate_file = pki.client.certificate;
            clients.private_key_file = pki.client.key;
            pipeslot::test::set_remote_client_user("CN=client-alice,O=pipeslot tests");
        } else {
            options.plaintext_on_loopback = clients.plaintext_on_loopback = true;
            ::setenv("PIPESLOT_GATEWAY_PLAINTEXT", "loopback", 1);  // helper processes too
        }
        gateway = pipeslot::Gateway::start(options);
        if (auto ec = pipeslot::set_gateway_client_options(clients)) throw std::system_error(ec, "client TLS");
        ::setenv("PIPESLOT_GATEWAY_PORT", std::to_string(gateway.port()).c_str(), 1);  // helper processes too
        pipeslot::test::use_remote_clients();
        std::printf("pipeslot tests: every client opens \\\\127.0.0.1\\pipe\\NAME, through a gateway on port %u%s\n",
                    unsigned{gateway.port()}, remote_tls ? " (TLS 1.3, client certificates)" : " (plaintext)");
    }
    const int result = RUN_ALL_TESTS();
    gateway.stop();
    std::error_code ignored;
    if (!directories.empty()) std::filesystem::remove_all(directories, ignored);
    return result;
#endif
}
