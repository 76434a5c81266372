#include "support.hpp"

#include <gtest/gtest.h>
#include <pipeslot/testing/fake.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <fstream>

#ifdef _WIN32
#include <windows.h>
#include <tlhelp32.h>
#else
#include <climits>
#include <unistd.h>
#endif

namespace pipeslot::test {

namespace {
std::filesystem::path own_directory() {
#ifdef _WIN32
    std::wstring path(32768, L'\0');
    const DWORD n = GetModuleFileNameW(nullptr, path.data(), static_cast<DWORD>(path.size()));
    path.resize(n);
    return std::filesystem::path(path).parent_path();
#else
    return std::filesystem::read_symlink("/proc/self/exe").parent_path();
#endif
}

std::string utf8_path(const std::filesystem::path& path) {
    const auto utf8 = path.u8string();
    return std::string(utf8.begin(), utf8.end());
}

#ifdef _WIN32
constexpr const char* exe_suffix = ".exe";
#else
constexpr const char* exe_suffix = "";
#endif
}  // namespace

namespace {
IpcSystem* system_under_test = &native_ipc();
bool fake_in_use = false, remote_in_use = false;

// The native system, with every client reaching its pipe through the
// gateway on loopback (\\127.0.0.1\pipe\NAME) and every server accepting
// remote clients: the conformance suite run as remote clients see it.
class RemoteClients final : public IpcSystem {
public:
    std::string host_name() override { return native_ipc().host_name(); }

protected:
    // The native system's own implementation (its do_ functions are protected).
    struct Reach : IpcSystem {
        static constexpr auto open_channel = &Reach::do_open_channel;
        static constexpr auto create_instance = &Reach::do_create_instance;
        static constexpr auto create_mailslot = &Reach::do_create_mailslot;
        static constexpr auto open_broadcaster = &Reach::do_open_broadcaster;
        static constexpr auto create_pipe = &Reach::do_create_pipe;
        static constexpr auto wait_for_instance = &Reach::do_wait_for_instance;
    };
    static PipeName remote(const PipeName& name) { return PipeName::parse("\\\\127.0.0.1\\pipe\\" + name.name()); }

    std::unique_ptr<ChannelBackend> do_open_channel(const PipeName& name, const ClientOptions& options,
                                                    std::error_code& ec) override {
        return (native_ipc().*Reach::open_channel)(remote(name), options, ec);
    }
    std::unique_ptr<InstanceBackend> do_create_instance(const PipeName& name, const ServerOptions& options,
                                                        std::error_code& ec) override {
        auto accepting = options;
        accepting.reject_remote_clients = false;
        return (native_ipc().*Reach::create_instance)(name, accepting, ec);
    }
    std::unique_ptr<MailslotBackend> do_create_mailslot(const MailslotName& name, const MailslotOptions& options,
                                                        std::error_code& ec) override {
        return (native_ipc().*Reach::create_mailslot)(name, options, ec);
    }
    std::unique_ptr<BroadcasterBackend> do_open_broadcaster(const MailslotName& name, std::error_code& ec) override {
        return (native_ipc().*Reach::open_broadcaster)(name, ec);
    }
    PipeStreams do_create_pipe(const PipeOptions& options, std::error_code& ec) override {
        return (native_ipc().*Reach::create_pipe)(options, ec);
    }
    void do_wait_for_instance(const PipeName& name, const ClientOptions& options, std::error_code& ec) override {
        (native_ipc().*Reach::wait_for_instance)(remote(name), options, ec);
    }
};
}  // namespace

IpcSystem& ipc() { return *system_under_test; }
bool using_fake() { return fake_in_use; }
void use_fake() {
    static testing::FakeSystem fake;
    system_under_test = &fake;
    fake_in_use = true;
}
bool using_remote_clients() { return remote_in_use; }
namespace {
std::string remote_user_seen;
}
std::string remote_client_user() { return remote_user_seen; }
void set_remote_client_user(std::string user) { remote_user_seen = std::move(user); }
void use_remote_clients() {
    static RemoteClients remote;
    system_under_test = &remote;
    remote_in_use = true;
}

namespace {
// Calls f(ec) and returns its result, or throws (which fails the test).
template <class F>
auto or_throw(std::string_view what, F&& f) {
    std::error_code ec;
    auto result = f(ec);
    if (ec) throw std::system_error(ec, std::string(what));
    return result;
}
}  // namespace

PipeInstance create_instance(std::string_view name, const ServerOptions& options) {
    return or_throw(name, [&](std::error_code& ec) { return ipc().create_instance(name, options, ec); });
}

MessageChannel open_channel(std::string_view name, const ClientOptions& options) {
    return or_throw(name, [&](std::error_code& ec) { return ipc().open_channel(name, options, ec); });
}

Mailslot create_mailslot(std::string_view name, const MailslotOptions& options) {
    return or_throw(name, [&](std::error_code& ec) { return ipc().create_mailslot(name, options, ec); });
}

Broadcaster open_broadcaster(std::string_view name) {
    return or_throw(name, [&](std::error_code& ec) { return ipc().open_broadcaster(name, ec); });
}

PipeStreams create_pipe(const PipeOptions& options) {
    return or_throw("create_pipe", [&](std::error_code& ec) { return ipc().create_pipe(options, ec); });
}

std::string child_program() { return utf8_path(own_directory() / (std::string("pipeslot-test-child") + exe_suffix)); }

std::string tool_program(const std::string& name) {
    return utf8_path(own_directory().parent_path() / "tools" / (name + exe_suffix));
}

Command child(std::string mode, std::vector<std::string> args) {
    Command c;
    c.program = child_program();
    c.args.push_back(std::move(mode));
    for (auto& a : args) c.args.push_back(std::move(a));
    return c;
}

std::string peer_program() { return utf8_path(own_directory() / (std::string("pipeslot-test-peer") + exe_suffix)); }

Command peer(std::string mode, std::vector<std::string> args) {
    Command c = child(std::move(mode), std::move(args));
    c.program = peer_program();
    return c;
}

std::string unique_pipe_name(const std::string& purpose) {
    static std::atomic<int> counter{0};
#ifdef _WIN32
    const auto pid = GetCurrentProcessId();
#else
    const auto pid = getpid();
#endif
    return "\\\\.\\pipe\\pipeslot-test-" + std::to_string(pid) + "-" + std::to_string(counter++) + "-" + purpose;
}

std::string unique_mailslot_name(const std::string& purpose) {
    auto pipe = unique_pipe_name(purpose);
    return "\\\\.\\mailslot\\pipeslot-test\\" + pipe.substr(pipe.rfind('\\') + 1);
}

Helper start_helper(Command command) {
    auto out = Pipe::create();
    auto in = Pipe::create();
    command.std_out = Stdio::from(std::move(out.write_end));
    command.std_in = Stdio::from(std::move(in.read_end));
    Helper h{Process::spawn(std::move(command)), std::move(out.read_end), std::move(in.write_end)};
    return h;
}

std::string Helper::line(Timeout timeout) {
    std::string text;
    std::byte c{};
    for (;;) {
        std::error_code ec;
        if (out.read(std::span(&c, 1), timeout, ec) == 0 || ec) return text;
        if (c == std::byte{'\n'}) return text;
        if (c != std::byte{'\r'}) text.push_back(static_cast<char>(c));
    }
}

std::vector<std::byte> bytes_of(const std::string& s) {
    const auto b = as_bytes(s);
    return {b.begin(), b.end()};
}

std::string text_of(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::vector<std::byte> pattern_bytes(std::size_t count) {
    std::vector<std::byte> out(count);
    for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<std::byte>((i * 31 + 7) % 251);
    return out;
}

std::span<const std::byte> as_bytes(const std::string& s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

std::string read_all(ByteReader& reader, Timeout timeout) {
    std::string out;
    std::vector<std::byte> buffer(65536);
    for (;;) {
        std::error_code ec;
        const auto n = reader.read(buffer, timeout, ec);
        out.append(reinterpret_cast<const char*>(buffer.data()), n);
        if (ec == errc::end_of_stream) return out;
        if (ec) {
            ADD_FAILURE() << "read_all: " << ec.message();
            return out;
        }
    }
}

Finished run_capturing(Command command, Capture which) {
    auto pipe = Pipe::create();
    (which == Capture::std_out ? command.std_out : command.std_err) = Stdio::from(std::move(pipe.write_end));
    auto process = Process::spawn(std::move(command));
    Finished f;
    f.output = read_all(pipe.read_end);
    std::error_code ec;
    f.status = process.wait(generous, ec);
    EXPECT_FALSE(ec) << ec.message();
    return f;
}

Connected connect_pair(const std::string& purpose, ServerOptions server_options, ClientOptions client_options) {
    Connected c;
    c.name = test::unique_pipe_name(purpose);
    c.server = test::create_instance(c.name, server_options);
    c.client = test::open_channel(c.name, client_options);
    std::error_code ec;
    c.server.accept(generous, ec);
    EXPECT_EQ(ec, errc::already_connected) << ec.message();  // ConnectNamedPipe: ERROR_PIPE_CONNECTED
    return c;
}

std::size_t open_handle_count() {
#ifdef _WIN32
    DWORD count = 0;
    GetProcessHandleCount(GetCurrentProcess(), &count);
    return count;
#else
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
#endif
}

std::size_t thread_count() {
#ifdef _WIN32
    std::size_t n = 0;
    const HANDLE snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
    THREADENTRY32 entry{};
    entry.dwSize = sizeof entry;
    for (BOOL more = Thread32First(snapshot, &entry); more; more = Thread32Next(snapshot, &entry))
        n += entry.th32OwnerProcessID == GetCurrentProcessId() ? 1 : 0;
    CloseHandle(snapshot);
    return n;
#else
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) ++n;
    return n;
#endif
}

namespace {

// A count once what earlier tests left on its way out has gone: the same
// for 50 ms in a row (at most 2 s).
std::size_t settled(std::size_t (*count)()) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    std::size_t last = count();
    auto stable_since = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        const auto now = count();
        if (now != last) {
            last = now;
            stable_since = std::chrono::steady_clock::now();
        } else if (std::chrono::steady_clock::now() - stable_since >= std::chrono::milliseconds(50)) {
            break;
        }
    }
    return last;
}

// A count once it has come down to `expected` (at most 2 s).
std::size_t back_to(std::size_t (*count)(), std::size_t expected) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    auto now = count();
    while (now > expected && std::chrono::steady_clock::now() < give_up) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        now = count();
    }
    return now;
}

}  // namespace

std::size_t settled_thread_count() { return settled(thread_count); }
std::size_t thread_count_back_to(std::size_t expected) { return back_to(thread_count, expected); }
std::size_t settled_handle_count() { return settled(open_handle_count); }
std::size_t handle_count_back_to(std::size_t expected) { return back_to(open_handle_count, expected); }

std::string thread_names() {
#ifdef _WIN32
    return {};
#else
    std::string names;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
        std::ifstream comm(entry.path() / "comm");
        std::string name;
        std::getline(comm, name);
        names += (names.empty() ? "" : ", ") + name;
    }
    return "threads: " + names;
#endif
}

bool running_under_wine() {
#ifdef _WIN32
    const HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
    return ntdll && GetProcAddress(ntdll, "wine_get_version") != nullptr;
#else
    return false;
#endif
}

}  // namespace pipeslot::test
