#include "sluice_process.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_client.hpp"
#include "mock_upstream.hpp"

namespace sluice::test {

SluiceProcess::SluiceProcess(const std::string& server_keys, const std::string& rest,
                             const std::vector<std::pair<std::string, std::string>>& env) {
    start(server_keys, rest, env, 0);
}

SluiceProcess::SluiceProcess(const std::string& server_keys, const std::string& rest, Output output,
                             int pipe_bytes) {
    start(server_keys, rest, {}, output == Output::pipe ? pipe_bytes : 0);
}

void SluiceProcess::start(const std::string& server_keys, const std::string& rest,
                          const std::vector<std::pair<std::string, std::string>>& env, int pipe_bytes) {
    // The port was free when probed; a test running beside this one may take it before the child
    // binds. The child then exits with "cannot listen on": try another port.
    for (int attempt = 0; attempt < 3; ++attempt) {
        launch(server_keys, rest, env, pipe_bytes);
        if (ready_ || !reaped_ || output().find("cannot listen on") == std::string::npos) {
            return;
        }
        pid_ = -1;
        reaped_ = false;
        if (pipe_fd_ >= 0) {
            close(pipe_fd_);
            pipe_fd_ = -1;
        }
        std::remove(config_.c_str());
        std::remove(output_file_.c_str());
    }
}

void SluiceProcess::launch(const std::string& server_keys, const std::string& rest,
                           const std::vector<std::pair<std::string, std::string>>& env, int pipe_bytes) {
    {
        MockUpstream probe;  // a port that was free a moment ago
        port_ = probe.port();
    }
    char path[] = "/tmp/sluice-process-XXXXXX.yaml";
    const int fd = mkstemps(path, 5);
    close(fd);
    config_ = path;
    output_file_ = config_ + ".out";
    std::ofstream(config_) << "server:\n  listen: \"127.0.0.1:" << port_ << "\"\n" << server_keys << rest;
    int fds[2] = {-1, -1};
    if (pipe_bytes > 0 && pipe(fds) == 0) {
        fcntl(fds[1], F_SETPIPE_SZ, pipe_bytes);
        pipe_fd_ = fds[0];
    }
    pid_ = fork();
    if (pid_ == 0) {
        for (const auto& [name, value] : env) {
            setenv(name.c_str(), value.c_str(), 1);
        }
        FILE* out = std::freopen(output_file_.c_str(), "w", stdout);
        (void)out;
        dup2(fileno(stdout), 2);
        if (fds[1] >= 0) {
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
        }
        execl(SLUICE_BINARY, SLUICE_BINARY, "--config", config_.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    if (fds[1] >= 0) {
        close(fds[1]);
    }
    for (int i = 0; i < 200 && !ready_ && pid_ > 0; ++i) {
        if (waitpid(pid_, &reaped_status_, WNOHANG) == pid_) {
            reaped_ = true;  // it ended during start-up (a config error, a taken port)
            break;
        }
        try {
            Client probe(port_);
            ready_ = probe.request("GET", "/readyz").status == 200;
        } catch (...) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
}

SluiceProcess::~SluiceProcess() {
    if (pid_ > 0 && !reaped_) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    if (pipe_fd_ >= 0) {
        close(pipe_fd_);
    }
    std::remove(config_.c_str());
    std::remove(output_file_.c_str());
}

long SluiceProcess::status_kib(const std::string& field) const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(field + ":", 0) == 0) {
            return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
        }
    }
    return -1;
}

std::string SluiceProcess::read_pipe(const std::string& until, std::chrono::milliseconds timeout) {
    std::string got;
    if (pipe_fd_ < 0) {
        return got;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[65536];
    while (got.find(until) == std::string::npos) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            break;
        }
        pollfd pfd{pipe_fd_, POLLIN, 0};
        if (poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
            continue;
        }
        const ssize_t n = read(pipe_fd_, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

void SluiceProcess::signal(int sig) const {
    if (pid_ > 0 && !reaped_) {
        kill(pid_, sig);
    }
}

int SluiceProcess::wait_exit() {
    if (pid_ <= 0) {
        return -1;
    }
    int status = reaped_status_;
    const pid_t waited = reaped_ ? pid_ : waitpid(pid_, &status, 0);
    pid_ = -1;
    return waited > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string SluiceProcess::output() const {
    std::ifstream in(output_file_);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace sluice::test
