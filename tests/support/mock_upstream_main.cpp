// sluice-mock-upstream: the test mock upstream as a process, for `make bench` and manual tries.
//   sluice-mock-upstream --port 9000 [--tls-port 9443 --cert C --key K] [--threads N]
//                        [--fault '{"status":500}']   (every request fails so: a down provider)
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "mock_upstream.hpp"

int main(int argc, char** argv) {
    using sluice::test::MockUpstream;
    using sluice::test::MockUpstreamOptions;
    MockUpstreamOptions plain;
    MockUpstreamOptions tls;
    int tls_port = -1;
    std::string fault;
    plain.record = false;
    tls.record = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        const std::string v = argv[i + 1];
        if (a == "--port") {
            plain.port = static_cast<std::uint16_t>(std::stoi(v));
        } else if (a == "--tls-port") {
            tls_port = std::stoi(v);
        } else if (a == "--cert") {
            tls.cert_file = v;
        } else if (a == "--key") {
            tls.key_file = v;
        } else if (a == "--fault") {
            fault = v;
        } else if (a == "--threads") {
            plain.threads = tls.threads = std::stoi(v);
        } else {
            std::cerr << "unknown argument " << a << "\n";
            return 2;
        }
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    MockUpstream http(plain);
    http.set_default(fault);
    std::unique_ptr<MockUpstream> https;
    if (tls_port >= 0 && !tls.cert_file.empty()) {
        tls.port = static_cast<std::uint16_t>(tls_port);
        https = std::make_unique<MockUpstream>(tls);
    }
    std::cout << "mock upstream: http port " << http.port();
    if (https) {
        std::cout << ", https port " << https->port();
    }
    std::cout << std::endl;
    int sig = 0;
    sigwait(&set, &sig);
    return 0;
}
