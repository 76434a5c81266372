#include "flow_page.hpp"

#include "fd.hpp"

#include <pipeslot/error.hpp>

#include <algorithm>
#include <array>
#include <deque>
#include <cerrno>
#include <climits>
#include <ctime>
#include <list>
#include <mutex>
#include <new>
#include <fcntl.h>
#include <limits>
#include <sys/resource.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace pipeslot::posix {

// What one direction's reader publishes and its writer waits on. The peer
// can write anything here: a writer believes no more than it sent, and no
// count goes backwards.
struct FlowPage::Counters {
    std::atomic<std::uint64_t> taken{0};     // message bytes the reader has taken
    std::atomic<std::uint32_t> changes{0};   // the futex word: bumped when a sleeping writer must look again
    std::atomic<std::uint32_t> sleeping{0};  // a writer sleeps on `changes`
    std::atomic<std::uint32_t> stopped{0};   // the reader reads no more
    std::atomic<std::uint64_t> reading{0};   // the room of a receive under way, that may wait
};

namespace {

// Both directions, on one page.
struct Layout {
    FlowPage::Counters to_server;              // the client writes, the server reads
    alignas(64) FlowPage::Counters to_client;  // each direction on a cache line of its own
    alignas(64) std::atomic<std::uint32_t> client_let_go{0};  // the server may give it out again
};
constexpr std::size_t page_size = 4096;
static_assert(sizeof(Layout) <= page_size);
static_assert(std::atomic<std::uint64_t>::is_always_lock_free && std::atomic<std::uint32_t>::is_always_lock_free,
              "the counters are shared with another process: they must be lock-free");
constexpr int required_seals = F_SEAL_SHRINK | F_SEAL_SEAL;

// Where this process maps pages: slots in address space reserved once, taken
// in order and given back a chunk at a time. Unmapping a page that another
// CPU may hold in its TLB interrupts every CPU the process has run on, which
// costs tens of microseconds on a virtual machine: once per chunk, not per
// connection. A slot is reused only after its chunk's one remap.
class MappingArea {
public:
    void* map(int fd) noexcept {
        std::lock_guard lock(mutex_);
        void* slot = take_slot_locked();
        if (!slot) {  // all reserved space in use: a mapping of its own
            void* p = ::mmap(nullptr, page_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            return p == MAP_FAILED ? nullptr : p;
        }
        void* p = ::mmap(slot, page_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
        if (p == MAP_FAILED) {
            give_back_locked(slot);
            return nullptr;
        }
        return p;
    }

    void unmap(void* p) noexcept {
        std::lock_guard lock(mutex_);
        if (!in_area(p)) {
            ::munmap(p, page_size);
            return;
        }
        give_back_locked(p);
    }

private:
    static constexpr std::size_t chunk_pages = 64, chunk_count = 256;  // 64 MiB of address space, no memory
    static constexpr std::size_t chunk_bytes = chunk_pages * page_size;
    struct Chunk {
        std::size_t handed_out = 0, given_back = 0;
    };

    bool in_area(void* p) const noexcept {
        const auto* c = static_cast<char*>(p);
        return base_ && c >= base_ && c < base_ + chunk_count * chunk_bytes;
    }

    void* take_slot_locked() noexcept {
        if (!base_ && !reserve_failed_) {
            void* r = ::mmap(nullptr, chunk_count * chunk_bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                             -1, 0);
            if (r == MAP_FAILED) reserve_failed_ = true;
            else base_ = static_cast<char*>(r);
        }
        if (!base_) return nullptr;
        if (chunks_[current_].handed_out == chunk_pages) {
            // The next chunk whose slots are fresh or were all given back
            // (only the current one is ever partly handed out).
            std::size_t i = 1;
            while (i < chunk_count && chunks_[(current_ + i) % chunk_count].handed_out != 0) ++i;
            if (i == chunk_count) return nullptr;
            current_ = (current_ + i) % chunk_count;
        }
        auto& c = chunks_[current_];
        return base_ + current_ * chunk_bytes + (c.handed_out++) * page_size;
    }

    void give_back_locked(void* p) noexcept {
        const auto index = static_cast<std::size_t>(static_cast<char*>(p) - base_) / chunk_bytes;
        auto& c = chunks_[index];
        if (++c.given_back < chunk_pages) return;
        // Every slot of it has been used and given back: one remap for all.
        (void)::mmap(base_ + index * chunk_bytes, chunk_bytes, PROT_NONE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
        c = Chunk{};
    }

    std::mutex mutex_;
    char* base_ = nullptr;
    bool reserve_failed_ = false;
    std::size_t current_ = 0;
    std::array<Chunk, chunk_count> chunks_{};
};

MappingArea& mapping_area() {
    static auto* area = new MappingArea;  // never destroyed: pages may outlive static destruction
    return *area;
}

// The futex word is on a shared mapping: not FUTEX_PRIVATE_FLAG.
void futex_wait(std::atomic<std::uint32_t>& word, std::uint32_t seen, std::chrono::nanoseconds for_) noexcept {
    const auto ns = std::max<std::chrono::nanoseconds::rep>(for_.count(), 0);
    timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
    (void)::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

void futex_wake_all(std::atomic<std::uint32_t>& word) noexcept {
    (void)::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

// Tells writers sleeping on `c` to look again.
void wake_sleepers(FlowPage::Counters& c) noexcept {
    c.changes.fetch_add(1);
    futex_wake_all(c.changes);
}

}  // namespace

// A page as this process holds it: mapped in the area (or on the heap, unshared).
// How many server pages of this process keep their descriptor once the
// client has it, to offer the page again to that client's next connection:
// beyond this, a connected instance holds none, so that thousands can be.
constexpr int kept_descriptors_budget = 256;
std::atomic<int> kept_descriptors{0};

struct FlowPage::Mapping {
    Layout* layout = nullptr;
    int memfd = -1;  // the server's, to send again
    bool counted = false;  // in kept_descriptors
    dev_t dev = 0;   // the client's key: the inode stays while mapped
    ino_t ino = 0;
    bool shared = true;
    Mapping() = default;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping() {
        if (!shared) delete layout;
        else if (layout) mapping_area().unmap(layout);
        if (memfd >= 0) ::close(memfd);
        if (counted) kept_descriptors.fetch_sub(1);
    }
};

namespace {
using MappingPtr = std::unique_ptr<FlowPage::Mapping>;
}  // namespace

struct FlowPage::Spare {
    std::mutex mutex;
    MappingPtr page;
    pid_t pid = 0;  // the client process that had it
    uid_t uid = 0;
};

std::shared_ptr<FlowPage::Spare> FlowPage::new_spare() { return std::make_shared<Spare>(); }

namespace {

// The client's pages not in use, by inode, most recently used first.
class ClientPages {
public:
    MappingPtr take(dev_t dev, ino_t ino) {
        std::lock_guard lock(mutex_);
        const auto it = std::find_if(idle_.begin(), idle_.end(), [&](const MappingPtr& m) { return m->dev == dev && m->ino == ino; });
        if (it == idle_.end()) return nullptr;
        auto page = std::move(*it);
        idle_.erase(it);
        return page;
    }

    void give_back(MappingPtr page) {
        std::lock_guard lock(mutex_);
        idle_.push_front(std::move(page));
        if (idle_.size() > max_idle) idle_.pop_back();
    }

private:
    static constexpr std::size_t max_idle = 64;
    std::mutex mutex_;
    std::list<MappingPtr> idle_;
};

// Never destroyed: channels may outlive static destruction.
ClientPages& client_pages() {
    static auto* pages = new ClientPages;
    return *pages;
}

// A new page for the server: sized, sealed against shrinking and growing, mapped.
// A file-size limit below a page: sizing one would fail (and raise SIGXFSZ,
// which ends a process that does not ignore it).
bool page_too_large_to_size() noexcept {
    rlimit limit{};
    return ::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < page_size;
}

std::error_code new_server_page(MappingPtr& out) {
    auto page = std::make_unique<FlowPage::Mapping>();
    page->memfd = ::memfd_create("pipeslot-flow", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (page->memfd < 0) return last_error();
    if (::ftruncate(page->memfd, page_size) < 0 || ::fcntl(page->memfd, F_ADD_SEALS, required_seals | F_SEAL_GROW) < 0)
        return last_error();
    void* p = mapping_area().map(page->memfd);
    if (!p) return last_error();
    page->layout = new (p) Layout;
    out = std::move(page);
    return {};
}

}  // namespace

std::error_code FlowPage::for_client(const std::shared_ptr<Spare>& spare, pid_t pid, uid_t uid,
                                     std::shared_ptr<FlowPage>& out, int& memfd) {
    MappingPtr page;
    {
        std::lock_guard lock(spare->mutex);
        // Only to the process that had it, once it has let go: no other can write to it then.
        // A pid of 0 is a client in another pid namespace: it is not known who it is.
        if (pid > 0 && spare->page && spare->page->memfd >= 0 && spare->pid == pid && spare->uid == uid &&
            spare->page->layout->client_let_go.load()) {
            page = std::move(spare->page);
            new (page->layout) Layout;  // as new for this connection
        }
    }
    if (!page && page_too_large_to_size()) {
        out = unshared(true);  // no page can be sized in this process: served without quotas
        memfd = -1;
        return {};
    }
    if (!page) {
        if (auto ec = new_server_page(page)) return ec;
    }
    memfd = page->memfd;
    out = std::make_shared<FlowPage>(std::move(page), true);
    out->spare_ = spare;
    out->client_pid_ = pid;
    out->client_uid_ = uid;
    return {};
}

std::error_code FlowPage::adopt(int memfd, std::shared_ptr<FlowPage>& out) {
    const Fd fd(memfd);
    struct stat st {};
    if (::fstat(memfd, &st) < 0) return last_error();
    auto page = client_pages().take(st.st_dev, st.st_ino);  // checked when it was first mapped
    if (!page) {
        const int seals = ::fcntl(memfd, F_GET_SEALS);
        if (seals < 0 || (seals & required_seals) != required_seals || !S_ISREG(st.st_mode) ||
            st.st_size != static_cast<off_t>(page_size))
            return make_error_code(errc::protocol_error);
        page = std::make_unique<Mapping>();
        void* p = mapping_area().map(memfd);
        if (!p) return last_error();
        page->layout = static_cast<Layout*>(p);
        page->dev = st.st_dev;
        page->ino = st.st_ino;
    }
    out = std::make_shared<FlowPage>(std::move(page), false);
    return {};
}

std::shared_ptr<FlowPage> FlowPage::unshared(bool is_server) {
    auto page = std::make_unique<Mapping>();
    page->layout = new Layout;
    page->shared = false;
    return std::make_shared<FlowPage>(std::move(page), is_server);
}

void FlowPage::sent_to_client() noexcept {
    auto& m = *mapping_;
    if (!is_server_ || m.memfd < 0 || m.counted) return;
    if (kept_descriptors.fetch_add(1) < kept_descriptors_budget) {
        m.counted = true;
        return;
    }
    kept_descriptors.fetch_sub(1);
    ::close(m.memfd);  // the mapping stays; the page is not offered again
    m.memfd = -1;
}

FlowPage::FlowPage(std::unique_ptr<Mapping> mapping, bool is_server) noexcept
    : mapping_(std::move(mapping)), is_server_(is_server) {
    auto* layout = mapping_->layout;
    reading_ = is_server ? &layout->to_server : &layout->to_client;
    writing_ = is_server ? &layout->to_client : &layout->to_server;
}

FlowPage::~FlowPage() {
    if (!mapping_->shared) return;
    if (is_server_) {
        if (const auto spare = spare_.lock()) {  // kept for that client's next connection
            std::lock_guard lock(spare->mutex);
            spare->page = std::move(mapping_);
            spare->pid = client_pid_;
            spare->uid = client_uid_;
        }
    } else {
        mapping_->layout->client_let_go.store(1);  // the last this end does with it
        client_pages().give_back(std::move(mapping_));
    }
}

std::uint64_t FlowPage::will_send(std::uint64_t bytes) noexcept {
    sent_ += bytes;
    if (bytes == 0 || !mapping_->shared || taken_by_peer(sent_ > quota_ ? sent_ - quota_ : 0)) return 0;
    return sent_ - quota_;
}

std::uint64_t FlowPage::peer_read_waiting() const noexcept {
    return mapping_->shared && taken_by_peer(sent_) ? writing_->reading.load() : 0;
}

bool FlowPage::fits(std::uint64_t bytes, std::uint64_t taken_at_once) const noexcept {
    const auto end = sent_ + bytes;
    const auto room = quota_ + std::min(taken_at_once, std::numeric_limits<std::uint64_t>::max() - quota_);
    return bytes == 0 || !mapping_->shared || taken_by_peer(end > room ? end - room : 0);
}

void FlowPage::unsent(std::uint64_t bytes) noexcept { sent_ -= std::min(bytes, sent_); }

std::uint64_t FlowPage::flush_target() const noexcept {
    return !mapping_->shared || taken_by_peer(sent_) ? 0 : sent_;
}

bool FlowPage::all_taken_by_peer() const noexcept { return mapping_->shared && taken_by_peer(sent_); }

bool FlowPage::taken_by_peer(std::uint64_t target) const noexcept { return writing_->taken.load() >= target; }

bool FlowPage::peer_stopped_reading() const noexcept { return writing_->stopped.load() != 0; }

std::uint32_t FlowPage::changes() const noexcept { return writing_->changes.load(); }

void FlowPage::wait(std::uint32_t seen, std::uint64_t target, std::chrono::steady_clock::time_point until) const noexcept {
    // Said before looking, so the reader, which adds before it looks whether
    // anyone sleeps, either sees this or is seen (both sequentially consistent).
    writing_->sleeping.store(1);
    if (taken_by_peer(target) || peer_stopped_reading() || detached()) return;
    futex_wait(writing_->changes, seen, until - std::chrono::steady_clock::now());
}

void FlowPage::wake() const noexcept { wake_sleepers(*writing_); }

void FlowPage::detach() noexcept {
    detached_ = true;
    // A writer of this end says it sleeps before it looks at detached_ (both
    // sequentially consistent): either it sees this, or this sees it.
    if (writing_->sleeping.load()) wake();
}

void FlowPage::took(std::uint64_t n) noexcept {
    if (n == 0) return;
    // Only this end adds: a store, then a plain look at whether anyone sleeps
    // (one locked instruction a receive; the exchange only when one does).
    reading_->taken.store(reading_->taken.load(std::memory_order_relaxed) + n);
    if (reading_->sleeping.load() && reading_->sleeping.exchange(0)) wake_sleepers(*reading_);  // a writer still short sleeps again
}

void FlowPage::reading(std::uint64_t n) noexcept { reading_->reading.store(n, std::memory_order_relaxed); }

void FlowPage::stop_reading() noexcept {
    reading_->stopped.store(1);
    if (reading_->sleeping.exchange(0)) wake_sleepers(*reading_);
}

}  // namespace pipeslot::posix
