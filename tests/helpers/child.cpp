// pipeslot-test-child: the small program the conformance tests start as a
// child process. It uses only the C++ library and the OS, never pipeslot, so
// it sees its standard streams exactly as any other program would.
//
//   cat                copy stdin to stdout
//   gen N              write N bytes of the test pattern to stdout
//   check N            read stdin; exit 0 if it is exactly N bytes of the pattern, 3 if not
//   exit N             exit with status N
//   args [ARG...]      print each argument as hex of its UTF-8 bytes, one per line
//   fds [HANDLE...]    POSIX: print every open descriptor; Windows: print each
//                      given handle value that is valid in this process
//   wait-stdin         read stdin until end of stream, then exit 0
//   stderr TEXT        write TEXT to stderr
//   pwd                print the working directory
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#include <windows.h>
#include <shellapi.h>
#else
#include <fcntl.h>
#include <unistd.h>
#endif

namespace {

unsigned char pattern(std::size_t i) { return static_cast<unsigned char>((i * 31 + 7) % 251); }

std::vector<std::string> arguments(int argc, char** argv) {
#ifdef _WIN32
    // The UTF-16 command line, parsed the way every Windows program parses it.
    (void)argc;
    (void)argv;
    int count = 0;
    wchar_t** wide = CommandLineToArgvW(GetCommandLineW(), &count);
    std::vector<std::string> out;
    for (int i = 0; i < count; ++i) {
        const int n = WideCharToMultiByte(CP_UTF8, 0, wide[i], -1, nullptr, 0, nullptr, nullptr);
        std::string s(static_cast<std::size_t>(n), '\0');
        WideCharToMultiByte(CP_UTF8, 0, wide[i], -1, s.data(), n, nullptr, nullptr);
        s.resize(static_cast<std::size_t>(n - 1));
        out.push_back(s);
    }
    LocalFree(wide);
    return out;
#else
    return {argv, argv + argc};
#endif
}

int copy_stdin(FILE* out) {
    std::vector<char> buffer(65536);
    std::size_t n;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), stdin)) > 0) {
        if (out && std::fwrite(buffer.data(), 1, n, out) != n) return 1;
    }
    if (out) std::fflush(out);
    return std::ferror(stdin) ? 1 : 0;
}

int generate(std::size_t count) {
    std::vector<unsigned char> block(65536);
    for (std::size_t done = 0; done < count;) {
        const std::size_t n = std::min(block.size(), count - done);
        for (std::size_t i = 0; i < n; ++i) block[i] = pattern(done + i);
        if (std::fwrite(block.data(), 1, n, stdout) != n) return 1;
        done += n;
    }
    return std::fflush(stdout) == 0 ? 0 : 1;
}

int check(std::size_t expected) {
    std::vector<unsigned char> buffer(65536);
    std::size_t total = 0, n;
    bool same = true;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), stdin)) > 0) {
        for (std::size_t i = 0; i < n && same; ++i) same = buffer[i] == pattern(total + i);
        total += n;
    }
    if (!same || total != expected) {
        std::fprintf(stderr, "check: got %zu bytes, pattern %s\n", total, same ? "ok" : "wrong");
        return 3;
    }
    return 0;
}

int list_handles(const std::vector<std::string>& handles) {
#ifdef _WIN32
    for (const auto& text : handles) {
        const auto value = static_cast<std::intptr_t>(std::strtoll(text.c_str(), nullptr, 10));
        DWORD flags = 0;
        if (GetHandleInformation(reinterpret_cast<HANDLE>(value), &flags)) std::printf("%s\n", text.c_str());
    }
#else
    (void)handles;
    const long max = sysconf(_SC_OPEN_MAX) > 0 ? std::min(sysconf(_SC_OPEN_MAX), 65536L) : 1024;
    for (int fd = 0; fd < max; ++fd) {
        if (fcntl(fd, F_GETFD) >= 0) std::printf("%d\n", fd);
    }
#endif
    return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef _WIN32
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
#endif
    const auto args = arguments(argc, argv);
    if (args.size() < 2) return 64;
    const std::string& mode = args[1];
    const std::vector<std::string> rest(args.begin() + 2, args.end());
    const auto number = [&] { return rest.empty() ? 0 : std::strtoull(rest[0].c_str(), nullptr, 10); };

    if (mode == "cat") return copy_stdin(stdout);
    if (mode == "gen") return generate(number());
    if (mode == "check") return check(number());
    if (mode == "exit") return static_cast<int>(number());
    if (mode == "wait-stdin") return copy_stdin(nullptr);
    if (mode == "fds") return list_handles(rest);
    if (mode == "stderr") {
        std::fputs(rest.empty() ? "" : rest[0].c_str(), stderr);
        return 0;
    }
    if (mode == "pwd") {
        const auto path = std::filesystem::current_path().u8string();
        std::fwrite(path.data(), 1, path.size(), stdout);
        std::printf("\n");
        return 0;
    }
    if (mode == "args") {
        for (const auto& a : rest) {
            for (unsigned char c : a) std::printf("%02x", c);
            std::printf("\n");
        }
        return 0;
    }
    return 64;
}
