// sluice: argv → config → runtime → server → wait for a signal. Nothing else lives here.
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <string>

#include <boost/asio/signal_set.hpp>
#include <sluice/config.hpp>
#include <sluice/version.hpp>

#include "log/log.hpp"
#include "proxy/proxy.hpp"
#include "runtime/runtime.hpp"
#include "server/fd_limit.hpp"
#include "server/server.hpp"
#include "util/allocator.hpp"

namespace {

void usage(std::ostream& out) {
    out << "usage: sluice [--config FILE] [--check-config FILE] [--version] [--help]\n"
           "  --config FILE        run with this config (default: config/sluice.yaml,\n"
           "                       or $SLUICE_CONFIG when set)\n"
           "  --check-config FILE  validate FILE and exit 0 (valid) or 1 (errors on stderr)\n"
           "  --version            print the version and exit\n";
}

void print_errors(const sluice::ConfigError& e) {
    for (const auto& line : e.errors()) {
        std::cerr << "config error: " << line << "\n";
    }
}

std::string summary(const sluice::Runtime& rt) {
    const auto& cfg = rt.config();
    std::string s = std::to_string(rt.providers().size()) + " provider(s) [";
    bool first = true;
    for (const auto& p : rt.providers()) {
        s += first ? "" : ", ";
        first = false;
        s += p->name() + ":" + std::string(p->kind()) + (p->enabled() ? "" : " (disabled)");
    }
    s += "], " + std::to_string(rt.routes().size()) + " route(s), " + std::to_string(cfg.keys.size()) +
         " key(s), " +
         (cfg.server.threads == 0 ? std::string("one worker per core")
                                  : std::to_string(cfg.server.threads) + " worker(s)");
    return s;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path;
    if (const char* env = std::getenv("SLUICE_CONFIG")) {  // NOLINT(concurrency-mt-unsafe)
        config_path = env;
    }
    std::string check_path;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--version" || arg == "-v") {
            std::cout << "sluice " << sluice::kVersion << "\n";
            return 0;
        }
        if (arg == "--help" || arg == "-h") {
            usage(std::cout);
            return 0;
        }
        if ((arg == "--config" || arg == "-c") && i + 1 < argc) {
            config_path = argv[++i];
        } else if (arg == "--check-config" && i + 1 < argc) {
            check_path = argv[++i];
        } else {
            std::cerr << "sluice: unknown argument '" << arg << "'\n";
            usage(std::cerr);
            return 2;
        }
    }
    if (!check_path.empty()) {
        try {
            auto cfg = sluice::load_config_file(check_path);
            auto rt = sluice::Runtime::build(std::move(cfg));
            for (const auto& w : rt->config().warnings) {
                std::cout << "warning: " << w << "\n";
            }
            for (const auto& w : rt->warnings()) {
                std::cout << "warning: " << w << "\n";
            }
            std::cout << check_path << ": OK (" << summary(*rt) << ")\n";
            return 0;
        } catch (const sluice::ConfigError& e) {
            print_errors(e);
            return 1;
        }
    }
    if (config_path.empty()) {
        config_path = "config/sluice.yaml";
    }

    std::shared_ptr<const sluice::Runtime> runtime;
    try {
        runtime = sluice::Runtime::build(sluice::load_config_file(config_path));
    } catch (const sluice::ConfigError& e) {
        print_errors(e);
        return 1;
    }
    // Signals are taken on this thread; the workers and the log writer (started by
    // log::setup, so blocked before it) never see them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    sigaddset(&set, SIGHUP);  // its default action would kill the process
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    sluice::log::setup(runtime->config().log);
    for (const auto& w : runtime->config().warnings) {
        sluice::log::warn("{}", w);
    }
    for (const auto& w : runtime->warnings()) {
        sluice::log::warn("{}", w);
    }
    if (!runtime->auth_enabled()) {
        sluice::log::warn(
            "no keys configured: authentication is off and anyone who can reach {} "
            "may use every route",
            runtime->config().server.listen);
    }
    {
        const auto& sc = runtime->config().server;
        const auto fds = sluice::raise_open_file_limit(
            sluice::descriptors_needed(sc.max_connections, sluice::workers_for(sc)));
        if (fds.soft != fds.soft_before) {
            sluice::log::info("open-file limit raised from {} to its hard limit {}", fds.soft_before,
                              fds.soft);
        }
        if (fds.warning) {
            sluice::log::warn("{}", *fds.warning);
        }
    }

    sluice::Server server(runtime, sluice::proxy::make_request_handler());
    try {
        server.start();
    } catch (const std::exception& e) {
        sluice::log::error("{}", e.what());
        sluice::log::shutdown(std::chrono::seconds(2));
        return 1;
    }
    sluice::log::info("sluice {} listening on {} (port {}) with {} worker(s) on {}: {}", sluice::kVersion,
                      runtime->config().server.listen, server.port(), server.worker_count(),
                      sluice::allocator::name(), summary(*runtime));

    int signals_seen = 0;
    sigset_t wait_set;
    sigemptyset(&wait_set);
    sigaddset(&wait_set, SIGTERM);
    sigaddset(&wait_set, SIGINT);
    sigaddset(&wait_set, SIGHUP);
    while (!server.stopped()) {
        timespec tick{0, 50 * 1000 * 1000};
        siginfo_t info;
        const int sig = sigtimedwait(&wait_set, &info, &tick);
        if (sig <= 0) {
            continue;
        }
        if (sig == SIGHUP) {
            // No config reload yet: say so instead of dying (the default action of SIGHUP).
            sluice::log::warn(
                "received SIGHUP: ignored (config reload is not supported; restart "
                "to apply a new config)");
            continue;
        }
        if (++signals_seen == 1) {
            sluice::log::info("received {}: draining (send it again to stop at once)",
                              strsignal(sig));  // NOLINT(concurrency-mt-unsafe)
            server.drain();
        } else {
            sluice::log::warn("received {} again: stopping now", strsignal(sig));  // NOLINT
            server.stop_now();
        }
    }
    server.wait();
    sluice::log::info("sluice stopped");
    sluice::log::shutdown(std::chrono::seconds(2));  // a blocked output does not hold the exit
    return 0;
}
