// Connection hygiene: what a silent client, a signal or a hostile value in a log line can do.
#include <gtest/gtest.h>

#include <csignal>
#include <chrono>
#include <thread>

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

TEST(Hygiene, ABlockedStdoutNeverStallsAWorkerAndTheDroppedLinesAreCountedOnceItDrains) {
    // A full container log pipe: 4 KiB that nobody reads while 1,500 access lines are made.
    SluiceProcess p("  threads: 1\n  max_requests_per_connection: 100000\n",
                    "log:\n  queue_lines: 32\n" + kMockOnly,
                    SluiceProcess::Output::pipe, 4096);
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
