#include "platform.hpp"
#include "throw.hpp"

#include <pipeslot/error.hpp>
#include <pipeslot/process.hpp>

#include <algorithm>
#include <utility>

namespace pipeslot {
namespace {

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

bool valid_command(const Command& c) {
    return !c.program.empty() && !has_nul(c.program) && !has_nul(c.working_directory) &&
           std::none_of(c.args.begin(), c.args.end(), has_nul);
}

platform::ChildStdio child_stdio(const Stdio& s) {
    using Kind = platform::ChildStdio::Kind;
    return std::visit(
        [](const auto& target) -> platform::ChildStdio {
            using T = std::decay_t<decltype(target)>;
            if constexpr (std::is_same_v<T, std::monostate>) return {Kind::inherit, invalid_native_handle};
            else if constexpr (std::is_same_v<T, Stdio::Null>) return {Kind::null, invalid_native_handle};
            else return {Kind::handle, target.native_handle()};
        },
        s.target());
}

bool holds_closed_end(const Stdio& s) {
    return std::visit(
        [](const auto& target) {
            using T = std::decay_t<decltype(target)>;
            if constexpr (std::is_same_v<T, PipeReadEnd> || std::is_same_v<T, PipeWriteEnd>)
                return !target.is_open();
            else return false;
        },
        s.target());
}

}  // namespace

Stdio Stdio::null() noexcept {
    Stdio s;
    s.target_ = Null{};
    return s;
}

Stdio Stdio::from(PipeReadEnd&& end) noexcept {
    Stdio s;
    s.target_ = std::move(end);
    return s;
}

Stdio Stdio::from(PipeWriteEnd&& end) noexcept {
    Stdio s;
    s.target_ = std::move(end);
    return s;
}

Process::Process(Process&& other) noexcept
    : handle_(std::exchange(other.handle_, invalid_native_handle)),
      pid_(std::exchange(other.pid_, -1)),
      exited_(other.exited_),
      exit_code_(other.exit_code_) {}

Process& Process::operator=(Process&& other) noexcept {
    if (this != &other) {
        reset();
        handle_ = std::exchange(other.handle_, invalid_native_handle);
        pid_ = std::exchange(other.pid_, -1);
        exited_ = other.exited_;
        exit_code_ = other.exit_code_;
    }
    return *this;
}

Process::~Process() { reset(); }

void Process::reset() noexcept {
    platform::ProcessHandles p{handle_, pid_};
    if (pid_ >= 0 && !exited_) platform::release(p);
    else if (handle_ != invalid_native_handle) platform::close_handle(handle_);
    handle_ = invalid_native_handle;
    pid_ = -1;
    exited_ = false;
}

Process Process::spawn(Command command, std::error_code& ec) {
    if (!valid_command(command) || holds_closed_end(command.std_in) || holds_closed_end(command.std_out) ||
        holds_closed_end(command.std_err)) {
        ec = errc::invalid_argument;
        return {};
    }
    platform::SpawnRequest request{command.program, command.args, command.working_directory,
                                   {child_stdio(command.std_in), child_stdio(command.std_out),
                                    child_stdio(command.std_err)}};
    platform::ProcessHandles handles;
    ec = platform::spawn(request, handles);
    if (ec) return {};
    Process p;
    p.handle_ = handles.handle;
    p.pid_ = handles.pid;
    return p;  // `command` goes out of scope here, closing the parent's copies of the ends
}

Process Process::spawn(Command command) {
    const std::string what = "spawn " + command.program;
    return detail::or_throw(what, [&](std::error_code& ec) { return spawn(std::move(command), ec); });
}

int Process::wait(Timeout timeout, std::error_code& ec) {
    if (!valid() || !timeout.is_valid()) {
        ec = errc::invalid_argument;
        return -1;
    }
    if (!exited_) {
        ec = platform::wait({handle_, pid_}, detail::Deadline(timeout), exit_code_);
        if (ec) return -1;
        exited_ = true;
    }
    ec.clear();
    return exit_code_;
}

int Process::wait() {
    return detail::or_throw("wait", [&](std::error_code& ec) { return wait(Timeout::forever(), ec); });
}

void Process::kill(std::error_code& ec) {
    if (!valid()) {
        ec = errc::invalid_argument;
        return;
    }
    ec = exited_ ? std::error_code{} : platform::kill({handle_, pid_});
}

std::vector<Process> spawn_pipeline(std::vector<Command> commands, std::error_code& ec) {
    const bool shape_ok =
        !commands.empty() &&
        std::all_of(commands.begin(), commands.end() - 1, [](const Command& c) {
            return std::holds_alternative<std::monostate>(c.std_out.target());
        }) &&
        std::all_of(commands.begin() + 1, commands.end(), [](const Command& c) {
            return std::holds_alternative<std::monostate>(c.std_in.target());
        });
    if (!shape_ok) {
        ec = errc::invalid_argument;
        return {};
    }
    // Wire every link first, so a failure leaves nothing running.
    for (std::size_t i = 0; i + 1 < commands.size(); ++i) {
        platform::PipeHandles link;
        ec = platform::create_pipe(0, /*for_children=*/true, link);
        if (ec) return {};
        commands[i].std_out = Stdio::from(PipeWriteEnd(link.write));
        commands[i + 1].std_in = Stdio::from(PipeReadEnd(link.read));
    }
    std::vector<Process> processes;
    for (auto& command : commands) {
        processes.push_back(Process::spawn(std::move(command), ec));
        if (ec) {
            processes.pop_back();
            for (auto& started : processes) {
                std::error_code ignored;
                started.kill(ignored);
                started.wait(Timeout::forever(), ignored);
            }
            return {};
        }
    }
    return processes;
}

std::vector<std::string> command_line_arguments(int argc, char** argv) {
    return platform::command_line_arguments(argc, argv);
}

}  // namespace pipeslot
