#pragma once

// The sluice binary as a child process, for tests of what only the real executable does:
// signals, exit codes, its output. It serves on a free 127.0.0.1 port; everything it prints
// goes to a file that output() reads.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

namespace sluice::test {

class SluiceProcess {
public:
    /// `server_keys`: indented keys of the `server:` block after `listen` (e.g. "  threads: 1\n");
    /// `rest`: the config after it (log, providers, routes, keys); `env`: variables set for the
    /// child only. Returns once /readyz answers 200 (ready()) or after about 4 s.
    SluiceProcess(const std::string& server_keys, const std::string& rest,
                  const std::vector<std::pair<std::string, std::string>>& env = {});
    /// Where the child's stdout goes.
    enum class Output {
        file,
        pipe
    };
    /// With Output::pipe, stdout is a pipe of `pipe_bytes` capacity that nothing reads until
    /// read_pipe() is called: a blocked container log pipe. stderr still goes to the file.
    SluiceProcess(const std::string& server_keys, const std::string& rest, Output output,
                  int pipe_bytes = 4096);
    /// Kills the process if it still runs and removes its files.
    ~SluiceProcess();
    SluiceProcess(const SluiceProcess&) = delete;
    SluiceProcess& operator=(const SluiceProcess&) = delete;

    bool ready() const { return ready_; }
    std::uint16_t port() const { return port_; }
    pid_t pid() const { return pid_; }
    /// A field of /proc/PID/status in KiB (e.g. "VmRSS", "VmHWM"), or -1.
    long status_kib(const std::string& field) const;
    void signal(int sig) const;
    /// Waits for the process to end: its exit code, or -1 when a signal ended it.
    int wait_exit();
    /// Everything it printed so far (stdout and stderr; stderr only with Output::pipe).
    std::string output() const;
    /// Output::pipe: reads the pipe until `until` appears in what was read or `timeout`
    /// passes; returns everything read by this call.
    std::string read_pipe(const std::string& until, std::chrono::milliseconds timeout);

private:
    std::uint16_t port_ = 0;
    std::string config_;
    std::string output_file_;
    void start(const std::string& server_keys, const std::string& rest,
               const std::vector<std::pair<std::string, std::string>>& env, int pipe_bytes);
    void launch(const std::string& server_keys, const std::string& rest,
                const std::vector<std::pair<std::string, std::string>>& env, int pipe_bytes);

    pid_t pid_ = -1;
    bool reaped_ = false;  ///< the child ended during start-up and was waited for
    int reaped_status_ = 0;
    int pipe_fd_ = -1;  ///< read end of the stdout pipe, or -1
    bool ready_ = false;
};

}  // namespace sluice::test
