// The mailslot roles: a reader that checks every message whole and in order
// per writer, and a writer that sends to the readers' names at random.
#include "soak.hpp"

#include <map>
#include <thread>

namespace soak {

// The receives run on a worker thread while the main thread waits for the
// stop; on the stop the worker takes what is queued (no more waiting), then
// closes. Each writer's sequence numbers must only rise.
int run_reader(const ChildArgs& a, Counters& c) {
    sigset_t set;
    block_stop_signals(set);
    c.v[x_fd_before] = fd_count();
    c.v[x_threads_before] = thread_count();
    std::atomic<int> result{-1};
    std::thread worker([&] {
        MailslotOptions options;
        options.max_message_size = mailslot_max;
        options.read_timeout = 200ms;
        std::error_code ec;
        Mailslot slot;
        const auto give_up = now_ns() + 10'000'000'000LL;
        for (;;) {
            {
                Busy b(c, 0, st_mailslot);
                slot = Mailslot::create(a.mailslots, options, ec);
            }
            if (!ec) break;
            c.v[m_create_retries]++;
            if (now_ns() > give_up || g_stop) {
                note(c, "reader: Mailslot::create kept failing: " + ec.message());
                result = 2;
                return;
            }
            std::this_thread::sleep_for(20ms);
        }
        c.v[m_creates]++;
        c.state = 1;
        std::map<std::uint64_t, std::uint64_t> last_seq;
        std::vector<std::byte> buffer(mailslot_max);
        bool draining = false;
        for (;;) {
            if (g_stop && !draining) {  // take what is queued, then stop
                draining = true;
                slot.set_read_timeout(Timeout::none(), ec);
            }
            std::size_t n = 0;
            {
                Busy b(c, 0, st_mailslot);
                n = slot.receive(buffer, ec);
            }
            if (ec == errc::timed_out) {
                if (draining) break;
                continue;
            }
            if (ec) {
                note(c, "reader: receive: " + ec.message());
                break;
            }
            const std::span<const std::byte> m(buffer.data(), n);
            if (!mailslot_message_is_good(m)) {
                c.v[m_bad]++;
                note(c, "reader: a corrupt message of " + std::to_string(n) + " bytes");
                continue;
            }
            const auto writer = get64(m.data() + 8), seq = get64(m.data() + 16);
            auto& last = last_seq[writer];
            if (seq <= last) {
                c.v[m_order]++;
                note(c, "reader: writer " + std::to_string(writer) + " message " + std::to_string(seq) + " after " +
                            std::to_string(last));
            }
            last = seq;
            if (writer == 0) c.v[m_final]++;
            else c.v[m_received]++;
        }
        slot.close();
        result = 0;
    });
    wait_for_stop(set, a.parent, [&] { return result >= 0; });
    worker.join();
    c.v[x_fd_after] = fd_count();
    c.v[x_threads_after] = thread_count_back_to(c.v[x_threads_before]);
    if (result != 0) return result;
    c.state = 2;
    return 0;
}

// Opens a reader's name at random, sends a few messages (some over the
// reader's maximum, which must be refused), closes, again until the stop.
int run_writer(const ChildArgs& a, Counters& c) {
    sigset_t set;
    block_stop_signals(set);
    c.v[x_fd_before] = fd_count();
    c.v[x_threads_before] = thread_count();
    const auto names = split(a.mailslots, '|');
    std::atomic<bool> finished{false};
    std::thread worker([&] {
        Rng rng(a.seed);
        std::uint64_t seq = 0;
        const std::uint64_t writer = std::uint64_t(a.id);
        c.state = 1;
        while (!g_stop) {
            const auto& name = names[pick(rng, 0, names.size() - 1)];
            std::error_code ec;
            Broadcaster out;
            {
                Busy b(c, 0, st_mailslot);
                out = Broadcaster::open(name, ec);
            }
            if (ec) {
                if (ec == errc::not_found) c.v[m_not_found]++;
                else note(c, "writer: open: " + ec.message());
                std::this_thread::sleep_for(20ms);
                continue;
            }
            const auto count = pick(rng, 1, 20);
            for (std::size_t i = 0; i < count && !g_stop; ++i) {
                const bool too_large = pick(rng, 0, 99) < 3;
                const auto payload = too_large ? pick(rng, mailslot_max - mailslot_header + 1, mailslot_max + 512)
                                               : pick(rng, 0, 99) < 80 ? pick(rng, 0, 256)
                                                                       : pick(rng, 257, mailslot_max - mailslot_header);
                const auto m = make_mailslot_message(rng, writer, seq + 1, payload);
                {
                    Busy b(c, 0, st_mailslot);
                    out.send(m, 2s, ec);
                }
                if (too_large) {
                    if (ec == errc::message_too_large) c.v[m_too_large_ok]++;
                    else if (ec == errc::not_found) c.v[m_not_found]++;
                    else if (!ec) {
                        // A reader created after the open may publish its size late; count, then check below.
                        ++seq;
                        c.v[m_sent]++;
                        note(c, "writer: a message over the reader's maximum was accepted");
                    } else {
                        c.v[m_send_errors]++;
                    }
                    continue;
                }
                if (!ec) {
                    ++seq;
                    c.v[m_sent]++;
                } else if (ec == errc::not_found) {
                    c.v[m_not_found]++;
                    break;
                } else if (ec == errc::timed_out) {
                    // Its reader keeps receiving: a 2 s wait means the queue
                    // held far fewer than max_queued_messages.
                    c.v[m_send_errors]++;
                    note(c, "writer: a send to a reader that keeps receiving timed out after 2 s");
                    break;
                } else {
                    c.v[m_send_errors]++;
                    note(c, "writer: send (" + std::to_string(i + 1) + " of " + std::to_string(count) +
                                " on this Broadcaster, its reader possibly killed since the open): " + ec.message());
                    break;
                }
                if (pick(rng, 0, 3) == 0) std::this_thread::sleep_for(std::chrono::microseconds(pick(rng, 0, 2000)));
            }
            out.close();
            std::this_thread::sleep_for(std::chrono::milliseconds(pick(rng, 1, 10)));
        }
        finished = true;
    });
    wait_for_stop(set, a.parent, [&] { return finished.load(); });
    worker.join();
    c.v[x_fd_after] = fd_count();
    c.v[x_threads_after] = thread_count_back_to(c.v[x_threads_before]);
    c.state = 2;
    return 0;
}

}  // namespace soak
