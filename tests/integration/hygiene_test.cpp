// Connection hygiene: what a silent client, a signal or a hostile value in a log line can do.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "gateway.hpp"
#include "http_client.hpp"
#include "sluice_process.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

const std::string kMockOnly =
    "providers:\n  mk:\n    kind: mock\nroutes:\n  - model: \"*\"\n    targets: [{provider: mk}]\n";

TEST(Hygiene, ANewConnectionThatSendsNothingIsClosedAtHeaderTimeoutNotIdleTimeout) {
    Gateway gw("server:\n  header_timeout: 1s\n  idle_timeout: 60s\n" + kMockOnly);
    Client c(gw.port());
    const auto began = std::chrono::steady_clock::now();
    EXPECT_TRUE(c.closed_by_peer(5000ms));
    EXPECT_LT(std::chrono::steady_clock::now() - began, 4s);
}

TEST(Hygiene, SighupIsLoggedAndIgnored) {
    SluiceProcess p("  threads: 1\n", kMockOnly);
    ASSERT_TRUE(p.ready()) << p.output();
    p.signal(SIGHUP);
    std::this_thread::sleep_for(300ms);
    Client c(p.port());
    EXPECT_EQ(c.request("GET", "/healthz").status, 200);
    EXPECT_NE(p.output().find("SIGHUP"), std::string::npos) << p.output();
}

TEST(Hygiene, AHostileModelNameCannotForgeAnAccessLogLine) {
    SluiceProcess p("  threads: 1\n", kMockOnly);
    ASSERT_TRUE(p.ready()) << p.output();
    Client c(p.port());
    const auto r = c.post_json(
        "/v1/chat/completions",
        R"({"model":"m\n2026-01-01T00:00:00.000Z info access request_id=forged","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(r.status, 400);
    std::this_thread::sleep_for(200ms);
    const std::string out = p.output();
    EXPECT_EQ(out.find("\n2026-01-01T00:00:00.000Z"), std::string::npos) << out;
}

/// "Max open files" soft and hard limits from /proc/PID/limits ("" when unreadable).
std::string open_files_line(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("Max open files", 0) == 0) {
            std::istringstream fields(line.substr(14));
            std::string soft, hard;
            fields >> soft >> hard;
            return soft + " " + hard;
        }
    }
    return "";
}

/// CPU time (user + system) the process has used, in clock ticks.
long cpu_ticks(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::istringstream rest(stat.substr(stat.rfind(')') + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {  // fields 14 and 15 of proc(5)
        if (i == 14) {
            utime = std::stol(field);
        } else if (i == 15) {
            stime = std::stol(field);
        }
    }
    return utime + stime;
}

TEST(Hygiene, AtStartTheOpenFileLimitIsRaisedToItsHardLimitAndAShortfallIsNamed) {
    rlimit saved{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
    // A million connections need about two million descriptors (2000072 for one worker).
    constexpr rlim_t kNeeded = 2000072;
    rlimit low = saved;
    low.rlim_cur = std::min<rlim_t>(256, saved.rlim_max);
    if (saved.rlim_max >= kNeeded) {
        // A host whose hard limit would fit (systemd raises nr_open to 2^30): lower the hard
        // limit for the child, which only root can undo for this process afterwards.
        if (geteuid() != 0) {
            GTEST_SKIP() << "the hard open-file limit fits a million connections here";
        }
        low.rlim_max = 4096;
    }
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);  // inherited by the child
    SluiceProcess p("  threads: 1\n  max_connections: 1000000\n", kMockOnly);
    ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
    ASSERT_TRUE(p.ready()) << p.output();
    const std::string hard = std::to_string(low.rlim_max);
    EXPECT_EQ(open_files_line(p.pid()), hard + " " + hard);
    const std::string out = p.output();
    if (low.rlim_max > 256) {
        EXPECT_NE(out.find("open-file limit raised from 256 to its hard limit " + hard), std::string::npos)
            << out;
    }
    EXPECT_NE(out.find("server.max_connections needs about 2000072 descriptors"), std::string::npos) << out;
}

TEST(Hygiene, AtTheOpenFileLimitAcceptPausesInsteadOfSpinningAndResumesWhenDescriptorsFree) {
    SluiceProcess p("  threads: 1\n", kMockOnly);
    ASSERT_TRUE(p.ready()) << p.output();
    const rlimit tight{48, 48};
    ASSERT_EQ(::prlimit(p.pid(), RLIMIT_NOFILE, &tight, nullptr), 0) << std::strerror(errno);
    // More connections than descriptors: accept() fails with EMFILE, the rest wait in the backlog.
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 80; ++i) {
        clients.push_back(std::make_unique<Client>(p.port(), 5000ms));
    }
    std::this_thread::sleep_for(300ms);
    const long before = cpu_ticks(p.pid());
    std::this_thread::sleep_for(1000ms);
    const long used = cpu_ticks(p.pid()) - before;
    // A worker spinning on EMFILE burns a whole core (~100 ticks a second); paused, it is idle.
    EXPECT_LT(used, 30) << "ticks in 1 s at the descriptor limit";
    EXPECT_NE(p.output().find("accept failed (Too many open files); pausing accepts"), std::string::npos)
        << p.output();
    // Descriptors come back: accepting resumes and requests are served again.
    clients.clear();
    Client c(p.port(), 5000ms);
    EXPECT_EQ(c.request("GET", "/healthz").status, 200);
}

TEST(Hygiene, ABlockedStdoutNeverStallsAWorkerAndTheDroppedLinesAreCountedOnceItDrains) {
    // A full container log pipe: 4 KiB that nobody reads while 1,500 access lines are made.
    SluiceProcess p("  threads: 1\n  max_requests_per_connection: 100000\n",
                    "log:\n  queue_lines: 32\n" + kMockOnly, SluiceProcess::Output::pipe, 4096);
    ASSERT_TRUE(p.ready()) << p.output();
    Client c(p.port(), 5000ms);
    const std::string body = R"({"model":"m","messages":[{"role":"user","content":"hi"}]})";
    for (int i = 0; i < 1500; ++i) {
        const auto r = c.post_json("/v1/chat/completions", body);
        ASSERT_EQ(r.status, 200) << "request " << i << " stalled behind the blocked log pipe";
    }
    // The reader comes back: what was queued arrives, then one line with the count.
    const std::string out = p.read_pipe("dropped", 10s);
    EXPECT_NE(out.find("log line(s) dropped"), std::string::npos) << out.substr(0, 2000);
    EXPECT_NE(out.find(" info access "), std::string::npos);
    // And logging goes on.
    EXPECT_EQ(c.post_json("/v1/chat/completions", body).status, 200);
    EXPECT_NE(p.read_pipe("path=/v1/chat/completions", 5s).find("access"), std::string::npos);
}

}  // namespace
}  // namespace sluice::test
