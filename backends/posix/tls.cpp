#include "tls.hpp"

#include <pipeslot/error.hpp>

#include <arpa/inet.h>
#include <cerrno>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>

namespace pipeslot::posix {

struct TlsContext::Psks {
    std::map<std::string, std::vector<unsigned char>> keys;  // the gateway's, by identity; a client's one
};

namespace {

// TLS_AES_128_GCM_SHA256: an external PSK is bound to one hash, SHA-256 here.
const unsigned char aes128gcm_sha256[2] = {0x13, 0x01};
constexpr std::size_t psk_size = 32;
// Where keys are in use, only the suites of their hash: a gateway that chose
// TLS_AES_256_GCM_SHA384 (OpenSSL's first) would pass over every key.
constexpr const char* sha256_suites = "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";

int psks_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

TlsContext::Psks* psks_of(SSL* ssl) {
    return static_cast<TlsContext::Psks*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), psks_index()));
}

SSL_SESSION* psk_session(SSL* ssl, const std::vector<unsigned char>& key) {
    const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, aes128gcm_sha256);
    SSL_SESSION* session = cipher ? SSL_SESSION_new() : nullptr;
    if (!session) return nullptr;
    if (!SSL_SESSION_set1_master_key(session, key.data(), key.size()) || !SSL_SESSION_set_cipher(session, cipher) ||
        !SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION)) {
        SSL_SESSION_free(session);
        return nullptr;
    }
    return session;
}

// The gateway: the key of the identity a client offers. An unknown identity
// goes on without a PSK (and then needs a certificate). SSL_get_psk_identity
// says nothing in TLS 1.3, so the identity is kept here, in the caller's string.
int find_psk(SSL* ssl, const unsigned char* identity, std::size_t size, SSL_SESSION** session) {
    *session = nullptr;
    const auto* psks = psks_of(ssl);
    const std::string id(reinterpret_cast<const char*>(identity), size);
    const auto it = psks ? psks->keys.find(id) : decltype(psks->keys.end()){};
    if (!psks || it == psks->keys.end()) return 1;
    *session = psk_session(ssl, it->second);
    if (*session) *static_cast<std::string*>(SSL_get_app_data(ssl)) = "psk:" + id;
    return *session ? 1 : 0;
}

// A client: its one PSK, offered for the SHA-256 suite.
int use_psk(SSL* ssl, const EVP_MD* md, const unsigned char** identity, std::size_t* size, SSL_SESSION** session) {
    *session = nullptr;
    const auto* psks = psks_of(ssl);
    if (!psks || psks->keys.empty()) return 1;
    const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, aes128gcm_sha256);
    // (By kind: OpenSSL may hand a fetched digest, never the same object.)
    if (!cipher || (md && EVP_MD_get_type(md) != EVP_MD_get_type(SSL_CIPHER_get_handshake_digest(cipher)))) return 1;
    const auto& [id, key] = *psks->keys.begin();
    *session = psk_session(ssl, key);
    *identity = reinterpret_cast<const unsigned char*>(id.data());
    *size = id.size();
    return *session ? 1 : 0;
}

SSL_CTX* new_context(const SSL_METHOD* method) {
    // No clean-up at exit: a client's relay thread may still be carrying a
    // channel then, and OpenSSL's state goes with the process in any case.
    static const bool initialised = OPENSSL_init_ssl(OPENSSL_INIT_NO_ATEXIT, nullptr) == 1;
    if (!initialised) return nullptr;
    SSL_CTX* ctx = SSL_CTX_new(method);
    if (!ctx) return nullptr;
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // A peer that closes without close_notify ends the stream; a message cut
    // short by it is still a broken pipe (the framing knows).
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

bool load_identity(SSL_CTX* ctx, const std::string& certificate, const std::string& key) {
    return SSL_CTX_use_certificate_chain_file(ctx, certificate.c_str()) == 1 &&
           SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) == 1 && SSL_CTX_check_private_key(ctx) == 1;
}

// Drives the handshake on a non-blocking socket until done, the deadline, or `stop_fd`.
bool handshake(SSL* ssl, int fd, const detail::Deadline& deadline, int stop_fd) {
    for (;;) {
        const int r = SSL_do_handshake(ssl);
        if (r == 1) return true;
        const int error = SSL_get_error(ssl, r);
        ERR_clear_error();
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) return false;
        pollfd p[2] = {{fd, static_cast<short>(error == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0}, {stop_fd, POLLIN, 0}};
        const int ready = ::poll(p, 2, static_cast<int>(std::max<std::int64_t>(deadline.remaining_ms(), 0)));
        if (ready == 0 || (ready > 0 && p[1].revents)) return false;
        if (ready < 0 && errno != EINTR) return false;
    }
}

std::string subject_of(X509* certificate) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (!bio) return {};
    X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    std::string text(data, static_cast<std::size_t>(size > 0 ? size : 0));
    BIO_free(bio);
    return text;
}

}  // namespace

void SslDeleter::operator()(SSL* ssl) const noexcept { SSL_free(ssl); }

TlsContext::TlsContext(SSL_CTX* ctx, std::shared_ptr<Psks> psks) noexcept : ctx_(ctx), psks_(std::move(psks)) {
    SSL_CTX_set_ex_data(ctx_, psks_index(), psks_.get());
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::shared_ptr<TlsContext> TlsContext::for_gateway(const GatewayOptions& o, std::error_code& ec) {
    ec = errc::invalid_argument;
    auto psks = std::make_shared<Psks>();
    for (const auto& [id, key] : o.psks) {
        if (id.empty() || key.size() != psk_size) return nullptr;
        psks->keys[id].assign(reinterpret_cast<const unsigned char*>(key.data()),
                              reinterpret_cast<const unsigned char*>(key.data()) + key.size());
    }
    SSL_CTX* ctx = new_context(TLS_server_method());
    if (!ctx) return nullptr;
    std::shared_ptr<TlsContext> context(new TlsContext(ctx, psks));
    if (!o.certificate_file.empty() && !load_identity(ctx, o.certificate_file, o.private_key_file)) return nullptr;
    if (!o.client_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx, o.client_ca_file.c_str(), nullptr) != 1) return nullptr;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    if (!psks->keys.empty()) {
        SSL_CTX_set_psk_find_session_callback(ctx, find_psk);
        SSL_CTX_set_ciphersuites(ctx, sha256_suites);
    }
    SSL_CTX_set_num_tickets(ctx, 0);  // no resumption: each connection authenticates in full
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    static const unsigned char id_context[] = "pipeslot-gateway";
    SSL_CTX_set_session_id_context(ctx, id_context, sizeof id_context - 1);
    ERR_clear_error();
    ec.clear();
    return context;
}

std::shared_ptr<TlsContext> TlsContext::for_client(const GatewayClientOptions& o, std::error_code& ec) {
    ec = errc::invalid_argument;
    auto psks = std::make_shared<Psks>();
    if (!o.psk_identity.empty()) {
        if (o.psk.size() != psk_size) return nullptr;
        psks->keys[o.psk_identity].assign(reinterpret_cast<const unsigned char*>(o.psk.data()),
                                          reinterpret_cast<const unsigned char*>(o.psk.data()) + o.psk.size());
    }
    SSL_CTX* ctx = new_context(TLS_client_method());
    if (!ctx) return nullptr;
    std::shared_ptr<TlsContext> context(new TlsContext(ctx, psks));
    if (!o.certificate_file.empty() && !load_identity(ctx, o.certificate_file, o.private_key_file)) return nullptr;
    if (!o.ca_file.empty() && SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) != 1) return nullptr;
    // Always verified: with a PSK and no CA, a gateway that falls back to a
    // certificate (it does not know the key) is refused, as nothing is trusted.
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (!psks->keys.empty()) {
        SSL_CTX_set_psk_use_session_callback(ctx, use_psk);
        SSL_CTX_set_ciphersuites(ctx, sha256_suites);
    }
    ERR_clear_error();
    ec.clear();
    return context;
}

SslPtr TlsContext::accept(int fd, const detail::Deadline& deadline, int stop_fd, std::string& identity,
                          std::error_code& ec) const {
    SslPtr ssl(SSL_new(ctx_));
    identity.clear();
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
        ERR_clear_error();
        ec = errc::resource_exhausted;
        return nullptr;
    }
    SSL_set_app_data(ssl.get(), &identity);
    SSL_set_accept_state(ssl.get());
    const bool done = handshake(ssl.get(), fd, deadline, stop_fd);
    SSL_set_app_data(ssl.get(), nullptr);
    if (!done) {
        ec = errc::access_denied;
        return nullptr;
    }
    if (identity.empty()) {
        X509* peer = SSL_get0_peer_certificate(ssl.get());
        if (!peer || SSL_get_verify_result(ssl.get()) != X509_V_OK) {  // neither a key nor a certificate
            ec = errc::access_denied;
            return nullptr;
        }
        identity = subject_of(peer);
    }
    ec.clear();
    return ssl;
}

SslPtr TlsContext::connect(int fd, const std::string& server, const detail::Deadline& deadline, std::error_code& ec) const {
    SslPtr ssl(SSL_new(ctx_));
    if (!ssl || SSL_set_fd(ssl.get(), fd) != 1) {
        ERR_clear_error();
        ec = errc::resource_exhausted;
        return nullptr;
    }
    unsigned char address[16];
    const bool literal = ::inet_pton(AF_INET, server.c_str(), address) == 1 || ::inet_pton(AF_INET6, server.c_str(), address) == 1;
    // The certificate must name the server as the client wrote it.
    if (literal) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), server.c_str());
    else {
        SSL_set1_host(ssl.get(), server.c_str());
        SSL_set_tlsext_host_name(ssl.get(), server.c_str());
    }
    SSL_set_connect_state(ssl.get());
    if (!handshake(ssl.get(), fd, deadline, -1)) {
        ec = errc::access_denied;
        return nullptr;
    }
    ec.clear();
    return ssl;
}

namespace {

// What a failed SSL_read_ex / SSL_write_ex (`r`) means for the relay. A peer
// gone is the end; an alert is a failure when reading (the other side refused).
Transport::Result outcome(SSL* ssl, int r, bool reading) noexcept {
    using Status = Transport::Status;
    const int error = SSL_get_error(ssl, r);
    const int saved = errno;
    ERR_clear_error();
    switch (error) {
    case SSL_ERROR_WANT_READ: return {Status::again_read};
    case SSL_ERROR_WANT_WRITE: return {Status::again_write};
    case SSL_ERROR_ZERO_RETURN: return {Status::end};
    case SSL_ERROR_SYSCALL:
        return {saved == 0 || saved == ECONNRESET || saved == EPIPE ? Status::end : Status::failed};
    default: return {reading ? Status::failed : Status::end};
    }
}

}  // namespace

Transport::Result TlsTransport::read(std::span<std::byte> into) noexcept {
    std::size_t n = 0;
    const int r = SSL_read_ex(ssl_, into.data(), into.size(), &n);
    return r == 1 ? Result{Status::done, n} : outcome(ssl_, r, true);
}

Transport::Result TlsTransport::write(std::span<const std::byte> bytes) noexcept {
    std::size_t n = 0;
    const int r = SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n);
    return r == 1 ? Result{Status::done, n} : outcome(ssl_, r, false);
}

void TlsTransport::shut_write() noexcept {
    SSL_shutdown(ssl_);  // close_notify, if the socket takes it now
    ERR_clear_error();
    ::shutdown(fd_, SHUT_WR);
}

bool TlsTransport::has_buffered() const noexcept { return SSL_has_pending(ssl_) == 1; }

bool starts_tls(int fd) noexcept {
    unsigned char first = 0;
    return ::recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT) == 1 && first == 0x16;  // a TLS handshake record
}

}  // namespace pipeslot::posix
