// Certificates for the gateway's TLS tests, made by the openssl tool in a
// directory of the test's own: two CAs (the one trusted, and a stranger),
// each with a gateway certificate (for 127.0.0.1, localhost and the test
// namespaces' 198.51.100.0/24 addresses) and a client certificate.
#pragma once

#include <string>

namespace pipeslot::test {

struct Credentials {
    std::string ca, certificate, key;  // PEM files
};

struct TestPki {
    std::string directory;
    Credentials gateway, client;                 // signed by the trusted CA (gateway.ca is that CA)
    Credentials stranger_gateway, stranger_client;  // signed by another CA
    std::string psk_file;                        // 32 random bytes in hex
};

// Made once per process (empty directory on failure: openssl missing).
const TestPki& test_pki();

}  // namespace pipeslot::test
