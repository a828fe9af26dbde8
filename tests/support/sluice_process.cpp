#include "sluice_process.hpp"

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

#include "http_client.hpp"
#include "mock_upstream.hpp"

namespace sluice::test {

SluiceProcess::SluiceProcess(const std::string& server_keys, const std::string& rest,
                             const std::vector<std::pair<std::string, std::string>>& env) {
    {
        MockUpstream probe;  // a port that was free a moment ago
        port_ = probe.port();
    }
    char path[] = "/tmp/sluice-process-XXXXXX.yaml";
    const int fd = mkstemps(path, 5);
    close(fd);
    config_ = path;
    output_file_ = config_ + ".out";
    std::ofstream(config_) << "server:\n  listen: \"127.0.0.1:" << port_ << "\"\n"
                           << server_keys << rest;
    pid_ = fork();
    if (pid_ == 0) {
        for (const auto& [name, value] : env) {
            setenv(name.c_str(), value.c_str(), 1);
        }
        FILE* out = std::freopen(output_file_.c_str(), "w", stdout);
        (void)out;
        dup2(fileno(stdout), 2);
        execl(SLUICE_BINARY, SLUICE_BINARY, "--config", config_.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    for (int i = 0; i < 200 && !ready_ && pid_ > 0; ++i) {
        try {
            Client probe(port_);
            ready_ = probe.request("GET", "/readyz").status == 200;
        } catch (...) {
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
    }
}

SluiceProcess::~SluiceProcess() {
    if (pid_ > 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    std::remove(config_.c_str());
    std::remove(output_file_.c_str());
}

void SluiceProcess::signal(int sig) const {
    if (pid_ > 0) {
        kill(pid_, sig);
    }
}

int SluiceProcess::wait_exit() {
    if (pid_ <= 0) {
        return -1;
    }
    int status = 0;
    const pid_t waited = waitpid(pid_, &status, 0);
    pid_ = -1;
    return waited > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string SluiceProcess::output() const {
    std::ifstream in(output_file_);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace sluice::test
