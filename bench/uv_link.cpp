// The libuv peer: uv_pipe_t over a UNIX socket, the same 4-byte length
// prefix as the raw baseline, driven the way libuv is meant to be (callbacks
// on a loop); the client runs its loop until each operation completes.
#include "links.hpp"

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <unistd.h>
#include <uv.h>

namespace bench {
namespace {

struct Frames {
    std::vector<std::byte> inbox;
    // A whole frame from the front of the inbox, if there is one.
    bool take(std::vector<std::byte>& out, std::size_t& size) {
        if (inbox.size() < 4) return false;
        std::uint32_t length;
        std::memcpy(&length, inbox.data(), 4);
        if (inbox.size() < 4 + length) return false;
        if (out.size() < length) out.resize(length);
        std::memcpy(out.data(), inbox.data() + 4, length);
        inbox.erase(inbox.begin(), inbox.begin() + 4 + length);
        size = length;
        return true;
    }
};

void allocate(uv_handle_t*, size_t suggested, uv_buf_t* buf) {
    buf->base = new char[suggested];
    buf->len = suggested;
}

struct WriteRequest {
    uv_write_t req;
    std::vector<std::byte> frame;
    bool* done;
};

// `count` copies of the message, framed, in one uv_write.
void write_frame(uv_stream_t* stream, const std::byte* data, std::size_t size, bool* done, int count = 1) {
    auto* w = new WriteRequest;
    w->frame.resize(count * (4 + size));
    const std::uint32_t length = static_cast<std::uint32_t>(size);
    for (std::size_t at = 0; at < w->frame.size(); at += 4 + size) {
        std::memcpy(w->frame.data() + at, &length, 4);
        if (size) std::memcpy(w->frame.data() + at + 4, data, size);
    }
    w->done = done;
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->frame.data()), static_cast<unsigned>(w->frame.size()));
    uv_write(&w->req, stream, &buf, 1, [](uv_write_t* req, int) {
        auto* w = static_cast<WriteRequest*>(req->data);
        if (w->done) *w->done = true;
        delete w;
    });
}

class UvClient final : public Link {
public:
    explicit UvClient(const std::string& path) {
        uv_loop_init(&loop_);
        uv_pipe_init(&loop_, &pipe_, 0);
        pipe_.data = this;
        uv_connect_t connect;
        int status = 1;
        connect.data = &status;
        uv_pipe_connect(&connect, &pipe_, path.c_str(), [](uv_connect_t* c, int s) { *static_cast<int*>(c->data) = s; });
        while (status == 1) uv_run(&loop_, UV_RUN_ONCE);
        if (status != 0) throw std::runtime_error("uv connect " + path);
    }
    ~UvClient() override {
        uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), nullptr);
        uv_run(&loop_, UV_RUN_DEFAULT);
        uv_loop_close(&loop_);
    }
    void send(const std::byte* data, std::size_t size) override {
        bool done = false;
        write_frame(reinterpret_cast<uv_stream_t*>(&pipe_), data, size, &done);
        while (!done) uv_run(&loop_, UV_RUN_ONCE);
    }
    void send_batch(const std::byte* data, std::size_t size, int count) override {
        bool done = false;
        write_frame(reinterpret_cast<uv_stream_t*>(&pipe_), data, size, &done, count);
        while (!done) uv_run(&loop_, UV_RUN_ONCE);
    }
    long receive(std::vector<std::byte>& buffer) override {
        std::size_t size = 0;
        if (frames_.take(buffer, size)) return static_cast<long>(size);
        got_ = false;
        target_ = &buffer;
        uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), allocate, [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
            auto* self = static_cast<UvClient*>(s->data);
            if (n > 0) self->frames_.inbox.insert(self->frames_.inbox.end(), reinterpret_cast<std::byte*>(buf->base),
                                                  reinterpret_cast<std::byte*>(buf->base) + n);
            delete[] buf->base;
            if (n < 0) self->eof_ = true;
            if (self->frames_.take(*self->target_, self->size_)) {
                self->got_ = true;
                uv_read_stop(s);
            }
        });
        while (!got_ && !eof_) uv_run(&loop_, UV_RUN_ONCE);
        return got_ ? static_cast<long>(size_) : -1;
    }

private:
    uv_loop_t loop_;
    uv_pipe_t pipe_;
    Frames frames_;
    std::vector<std::byte>* target_ = nullptr;
    std::size_t size_ = 0;
    bool got_ = false, eof_ = false;
};

struct ServerConnection {
    uv_pipe_t pipe;
    Frames frames;
    std::vector<std::byte> message;
};

void on_connection(uv_stream_t* server, int status) {
    if (status < 0) return;
    auto* c = new ServerConnection;
    uv_pipe_init(server->loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->pipe)) != 0) return;
    uv_read_start(reinterpret_cast<uv_stream_t*>(&c->pipe), allocate, [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* c = static_cast<ServerConnection*>(s->data);
        if (n > 0) c->frames.inbox.insert(c->frames.inbox.end(), reinterpret_cast<std::byte*>(buf->base),
                                          reinterpret_cast<std::byte*>(buf->base) + n);
        delete[] buf->base;
        if (n < 0) {
            uv_close(reinterpret_cast<uv_handle_t*>(s), [](uv_handle_t* h) { delete static_cast<ServerConnection*>(h->data); });
            return;
        }
        std::size_t size;
        const std::byte ack{'A'};
        while (c->frames.take(c->message, size)) {  // the same rules as every other server here
            if (size == 0) write_frame(s, &ack, 1, nullptr);
            else if (c->message[0] == std::byte{'e'}) write_frame(s, c->message.data(), size, nullptr);
        }
    });
}

}  // namespace

std::unique_ptr<Link> connect_uv(const std::string& path) { return std::make_unique<UvClient>(path); }

int serve_uv(const std::string& path) {
    ::unlink(path.c_str());
    uv_loop_t* loop = uv_default_loop();
    uv_pipe_t server;
    uv_pipe_init(loop, &server, 0);
    if (uv_pipe_bind(&server, path.c_str()) != 0 || uv_listen(reinterpret_cast<uv_stream_t*>(&server), 128, on_connection) != 0)
        return 1;
    std::fprintf(stderr, "ready\n");
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}

}  // namespace bench
