// The driver's own work beside its children, so that the driver's process
// (whose descriptors and threads are counted before and after) uses the
// library too.
#include "driver.hpp"

#include <thread>

namespace soak {

// The driver's own work, on a thread of its own (joined before the
// counts after): client channels to the soak's pipe, now and then an
// instance of its own on that name for a while, and a mailslot.
void Driver::own_work(std::atomic<bool>& stop, std::mutex& m, std::uint64_t seed) {
    ClientCtx x{own, 0, Rng(seed), 0xd0d0d0d0ULL << 32};
    PipeServer member;
    std::int64_t member_until = 0, next_member = now_ns() + 2'000'000'000LL, next_mailslot = now_ns() + 1'000'000'000LL;
    std::uint64_t mseq = 0;
    while (!stop) {
        one_connection(x, pipe);
        const auto now = now_ns();
        if (member.running() && now > member_until) {
            const auto from = now_ns();
            {
                Busy b(own, 1, st_serve);
                member.stop();
            }
            std::lock_guard lock(m);
            member_stops.push_back({from, now_ns()});
            next_member = now_ns() + std::int64_t(pick(x.rng, 2000, 6000)) * 1'000'000;
        } else if (!member.running() && now > next_member) {
            std::error_code ec;
            {
                Busy b(own, 1, st_serve);
                member = PipeServer::start(pipe, soak_server_options(), 2, server_handler(own, x.rng()), ec);
            }
            if (ec) {
                own.v[s_start_retries]++;
                if (ec != errc::timed_out && ec != errc::resource_exhausted)
                    note(own, "driver: PipeServer::start: " + ec.message());
                next_member = now + 1'000'000'000LL;
            } else {
                member_until = now_ns() + std::int64_t(pick(x.rng, 1000, 4000)) * 1'000'000;
            }
        }
        if (now > next_mailslot) {
            next_mailslot = now + 1'500'000'000LL;
            own_mailslot(x, ++mseq);
        }
    }
    if (member.running()) {
        const auto from = now_ns();
        member.stop();
        std::lock_guard lock(m);
        member_stops.push_back({from, now_ns()});
    }
}

void Driver::own_mailslot(ClientCtx& x, std::uint64_t round) {
    const auto name = mailslots[0] + "-driver";
    MailslotOptions options;
    options.max_message_size = mailslot_max;
    options.read_timeout = 2s;
    std::error_code ec;
    Busy b(own, 0, st_mailslot);
    auto slot = Mailslot::create(name, options, ec);
    if (ec) {
        note(own, "driver: Mailslot::create: " + ec.message());
        return;
    }
    own.v[m_creates]++;
    auto out = Broadcaster::open(name, ec);
    if (ec) {
        note(own, "driver: Broadcaster::open: " + ec.message());
        return;
    }
    const auto n = pick(x.rng, 1, 30);
    std::vector<std::vector<std::byte>> sent;
    for (std::size_t i = 0; i < n; ++i) {
        sent.push_back(make_mailslot_message(x.rng, 1'000'000 + round, i + 1, pick(x.rng, 0, 2000)));
        out.send(sent.back(), 2s, ec);
        if (ec) {
            note(own, "driver: mailslot send " + std::to_string(i + 1) + " of " + std::to_string(n) + " with " +
                          std::to_string(i) + " messages unread (the reader holds up to " +
                          std::to_string(default_mailslot_queue_messages) + ", net.unix.max_dgram_qlen is " +
                          dgram_qlen() + "): " + ec.message());
            sent.pop_back();
            break;
        }
        own.v[m_sent]++;
    }
    out.close();
    for (auto& m : sent) {
        auto got = slot.receive_message(ec);
        if (ec) {
            note(own, "driver: mailslot receive: " + ec.message());
            return;
        }
        if (got != m) {
            own.v[m_bad]++;
            note(own, "driver: a mailslot message differs");
        }
        own.v[m_received]++;
    }
    slot.close();
}

}  // namespace soak
