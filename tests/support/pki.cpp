#include "pki.hpp"

#include "support.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <unistd.h>

namespace pipeslot::test {
namespace {

bool openssl(std::vector<std::string> args) {
    Command c;
    c.program = "openssl";
    c.args = std::move(args);
    c.std_in = Stdio::null();
    c.std_out = Stdio::null();
    c.std_err = Stdio::null();
    std::error_code ec;
    auto p = Process::spawn(std::move(c), ec);
    if (ec) return false;
    return p.wait(generous, ec) == 0 && !ec;
}

bool make_ca(const std::string& dir, const std::string& name) {
    return openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
                    dir + "/" + name + ".key", "-out", dir + "/" + name + ".pem", "-days", "2", "-subj", "/CN=" + name});
}

bool make_signed(const std::string& dir, const std::string& ca, const std::string& name, const std::string& extensions) {
    const auto base = dir + "/" + name;
    std::ofstream(base + ".ext") << extensions << "\n";
    return openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", base + ".key",
                    "-out", base + ".csr", "-subj", "/O=pipeslot tests/CN=" + name}) &&
           openssl({"x509", "-req", "-in", base + ".csr", "-CA", dir + "/" + ca + ".pem", "-CAkey", dir + "/" + ca + ".key",
                    "-CAcreateserial", "-out", base + ".pem", "-days", "2", "-extfile", base + ".ext"});
}

TestPki make() {
    TestPki p;
    // Beside the run's own directories (support/main.cpp), which go when it ends.
    const char* shared = std::getenv("PIPESLOT_SHARED_DIR");
    const auto dir = shared ? std::filesystem::path(shared).parent_path() / "pki"
                            : std::filesystem::temp_directory_path() / ("pipeslot-pki-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto d = dir.string();
    const std::string server_names = "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost,IP:198.51.100.1,IP:198.51.100.2";
    const std::string client_use = "extendedKeyUsage=clientAuth";
    if (!make_ca(d, "trusted-ca") || !make_ca(d, "stranger-ca") ||
        !make_signed(d, "trusted-ca", "gateway", server_names) || !make_signed(d, "trusted-ca", "client-alice", client_use) ||
        !make_signed(d, "stranger-ca", "stranger-gateway", server_names) ||
        !make_signed(d, "stranger-ca", "stranger-client", client_use))
        return {};
    const auto creds = [&](const std::string& ca, const std::string& name) {
        return Credentials{d + "/" + ca + ".pem", d + "/" + name + ".pem", d + "/" + name + ".key"};
    };
    p.directory = d;
    p.gateway = creds("trusted-ca", "gateway");
    p.client = creds("trusted-ca", "client-alice");
    p.stranger_gateway = creds("stranger-ca", "stranger-gateway");
    p.stranger_client = creds("stranger-ca", "stranger-client");
    p.psk_file = d + "/psk.hex";
    std::random_device random;
    std::ofstream psk(p.psk_file);
    for (int i = 0; i < 32; ++i) psk << "0123456789abcdef"[random() % 16] << "0123456789abcdef"[random() % 16];
    return p;
}

}  // namespace

const TestPki& test_pki() {
    static const TestPki pki = make();
    return pki;
}

}  // namespace pipeslot::test
