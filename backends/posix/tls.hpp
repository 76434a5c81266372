// TLS 1.3 through OpenSSL for networked pipes: the gateway's and the
// clients' contexts (certificates, a CA, external pre-shared keys), the
// handshake on a non-blocking socket with a bound, and the relay's transport.
#pragma once

#include "../common/deadline.hpp"
#include "relay.hpp"

#include <pipeslot/gateway.hpp>

#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace pipeslot::posix {

struct SslDeleter {
    void operator()(SSL* ssl) const noexcept;
};
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

class TlsContext {
public:
    // The gateway's: its certificate (if any), client certificates checked
    // against client_ca_file (if any), the PSKs (if any). invalid_argument
    // for a file that does not load or a key of the wrong size.
    static std::shared_ptr<TlsContext> for_gateway(const GatewayOptions& options, std::error_code& ec);
    // A client's, for the gateway named `server` (checked against its certificate).
    static std::shared_ptr<TlsContext> for_client(const GatewayClientOptions& options, std::error_code& ec);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    // A session on the connected, non-blocking socket `fd`, handshaken
    // within `deadline` (or until `stop_fd` is readable). The gateway's
    // `client_identity` is the PSK identity or the certificate's subject.
    // access_denied for any failure of the handshake (a wrong certificate or key).
    SslPtr accept(int fd, const detail::Deadline& deadline, int stop_fd, std::string& client_identity,
                  std::error_code& ec) const;
    SslPtr connect(int fd, const std::string& server, const detail::Deadline& deadline, std::error_code& ec) const;

    struct Psks;  // the keys, where OpenSSL's callbacks find them

private:
    TlsContext(SSL_CTX* ctx, std::shared_ptr<Psks> psks) noexcept;
    SSL_CTX* ctx_;
    std::shared_ptr<Psks> psks_;  // the gateway's, by identity; or the client's one
};

// A TLS session over its socket (non-blocking), for relay().
class TlsTransport final : public Transport {
public:
    TlsTransport(SSL* ssl, int fd) noexcept : ssl_(ssl), fd_(fd) {}
    int fd() const noexcept override { return fd_; }
    Result read(std::span<std::byte> into) noexcept override;
    Result write(std::span<const std::byte> bytes) noexcept override;
    void shut_write() noexcept override;
    bool has_buffered() const noexcept override;

private:
    SSL* ssl_;
    int fd_;
};

// Whether the first byte waiting on `fd` starts a TLS record (a handshake).
bool starts_tls(int fd) noexcept;

}  // namespace pipeslot::posix
