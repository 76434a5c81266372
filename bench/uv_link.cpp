// The libuv peer: uv_pipe_t over a UNIX socket, the same 4-byte length
// prefix as the raw baseline, driven the way libuv is meant to be (callbacks
// on a loop); the client runs its loop until each operation completes. For
// the asynchronous rows, uv_clients drives many connections from one loop.
#include "links.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <sys/socket.h>
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

// --- the clients' loop (the asynchronous rows): many connections on one uv loop ---

using Clock = std::chrono::steady_clock;

struct LoopRun;

struct LoopClient {
    uv_pipe_t pipe;
    uv_connect_t connect;
    LoopRun* run = nullptr;
    Frames frames;
    std::vector<std::byte> message, reply;
    std::vector<char> read_buffer = std::vector<char>(65536);
    int warmup = 0;
    bool measuring = false, closed = false;
    Clock::time_point t0;
    long measured = 0;
    std::vector<double> latencies;
};

struct LoopRun {
    int clients = 0, ready = 0, finished = 0;
    double seconds = 0;
    Clock::time_point start, end;
    std::vector<std::unique_ptr<LoopClient>> all;
    std::vector<LoopClient*> parked;  // ready, waiting for the others
    uv_timer_t bound;                 // ends a run whose server stopped answering
    std::string error;
    LoopFigures figures;
};

void finish(LoopClient* c) {
    if (c->closed) return;
    c->closed = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->pipe), [](uv_handle_t* h) {
        auto* c = static_cast<LoopClient*>(h->data);
        LoopRun& run = *c->run;
        run.figures.round_trips += c->measured;
        run.figures.latencies_us.insert(run.figures.latencies_us.end(), c->latencies.begin(), c->latencies.end());
        if (++run.finished == run.clients) {
            run.figures.seconds = std::chrono::duration<double>(Clock::now() - run.start).count();
            uv_close(reinterpret_cast<uv_handle_t*>(&run.bound), nullptr);
        }
    });
}

void exchange(LoopClient* c) {
    c->t0 = Clock::now();
    write_frame(reinterpret_cast<uv_stream_t*>(&c->pipe), c->message.data(), c->message.size(), nullptr);
}

void now_ready(LoopClient* c) {
    LoopRun& run = *c->run;
    run.parked.push_back(c);
    if (++run.ready < run.clients) return;
    run.start = Clock::now();
    run.end = run.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(run.seconds));
    for (LoopClient* p : run.parked) {
        if (p->closed) continue;
        if (!run.error.empty()) {
            finish(p);
            continue;
        }
        p->measuring = true;
        exchange(p);
    }
}

void fail(LoopClient* c, const std::string& what) {
    if (c->run->error.empty()) c->run->error = what;
    const bool was_ready = c->measuring || std::find(c->run->parked.begin(), c->run->parked.end(), c) != c->run->parked.end();
    finish(c);
    if (!was_ready) now_ready(c);
}

// A round trip has come back: count it, then the next (or park, or stop).
void returned(LoopClient* c) {
    const auto now = Clock::now();
    if (c->measuring) {
        c->latencies.push_back(std::chrono::duration<double, std::micro>(now - c->t0).count());
        ++c->measured;
        if (now >= c->run->end) return finish(c);
        return exchange(c);
    }
    if (--c->warmup > 0) return exchange(c);
    now_ready(c);
}

void on_read(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
    auto* c = static_cast<LoopClient*>(s->data);
    if (n < 0) return fail(c, std::string("uv read: ") + uv_strerror(static_cast<int>(n)));
    c->frames.inbox.insert(c->frames.inbox.end(), reinterpret_cast<std::byte*>(buf->base),
                           reinterpret_cast<std::byte*>(buf->base) + n);
    std::size_t size = 0;
    while (!c->closed && c->frames.take(c->reply, size)) returned(c);
}

}  // namespace

LoopFigures uv_clients(const std::string& path, int clients, std::size_t size, double seconds) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    LoopRun run;
    run.clients = clients;
    run.seconds = seconds;
    uv_timer_init(&loop, &run.bound);
    run.bound.data = &run;
    // Connecting and warming up, the run, and a generous margin.
    uv_timer_start(&run.bound, [](uv_timer_t* t) {
        auto* run = static_cast<LoopRun*>(t->data);
        if (run->error.empty()) run->error = "the clients did not finish";
        for (auto& c : run->all) fail(c.get(), run->error);
    }, static_cast<std::uint64_t>((seconds + 60) * 1000), 0);
    const int warmup = std::max(1, 2000 / clients);  // as async_clients
    for (int i = 0; i < clients; ++i) {
        run.all.push_back(std::make_unique<LoopClient>());
        LoopClient* c = run.all.back().get();
        c->run = &run;
        c->warmup = warmup;
        c->message.assign(size, std::byte{'e'});
        c->reply.resize(size + 16);
        uv_pipe_init(&loop, &c->pipe, 0);
        c->pipe.data = c;
        c->connect.data = c;
        uv_pipe_connect(&c->connect, &c->pipe, path.c_str(), [](uv_connect_t* req, int status) {
            auto* c = static_cast<LoopClient*>(req->data);
            if (status != 0) return fail(c, std::string("uv connect: ") + uv_strerror(status));
            uv_read_start(
                reinterpret_cast<uv_stream_t*>(&c->pipe),
                [](uv_handle_t* h, size_t, uv_buf_t* buf) {
                    auto* c = static_cast<LoopClient*>(h->data);
                    *buf = uv_buf_init(c->read_buffer.data(), static_cast<unsigned>(c->read_buffer.size()));
                },
                on_read);
            exchange(c);
        });
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    if (!run.error.empty()) throw std::runtime_error("libuv clients: " + run.error);
    return std::move(run.figures);
}

std::unique_ptr<Link> connect_uv(const std::string& path) { return std::make_unique<UvClient>(path); }

int serve_uv(const std::string& path) {
    ::unlink(path.c_str());
    uv_loop_t* loop = uv_default_loop();
    uv_pipe_t server;
    uv_pipe_init(loop, &server, 0);
    // The backlog as raw Asio's (the system's largest, SOMAXCONN): the 1,000
    // clients of an asynchronous row connect at once, and a non-blocking
    // connect to a full AF_UNIX backlog fails (EAGAIN) where a blocking one waits.
    if (uv_pipe_bind(&server, path.c_str()) != 0 || uv_listen(reinterpret_cast<uv_stream_t*>(&server), SOMAXCONN, on_connection) != 0)
        return 1;
    std::fprintf(stderr, "ready\n");
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}

}  // namespace bench
