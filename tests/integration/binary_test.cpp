// The sluice executable itself: command line, config checking, and secrets in its output.
#include <array>
#include <cstdio>
#include <fstream>
#include <thread>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "http_client.hpp"
#include "mock_upstream.hpp"
#include "sluice_process.hpp"

namespace sluice::test {
namespace {

using namespace std::chrono_literals;

struct Run {
    int exit_code = -1;
    std::string output;
};

Run run(const std::string& args) {
    Run r;
    const std::string cmd = std::string(SLUICE_BINARY) + " " + args + " 2>&1";
    FILE* p = popen(cmd.c_str(), "r");
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) {
        r.output.append(buf.data(), n);
    }
    const int status = pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::string temp_file(const std::string& content) {
    char path[] = "/tmp/sluice-test-XXXXXX.yaml";
    const int fd = mkstemps(path, 5);
    close(fd);
    std::ofstream(path) << content;
    return path;
}

TEST(Binary, VersionAndHelp) {
    const auto v = run("--version");
    EXPECT_EQ(v.exit_code, 0);
    EXPECT_EQ(v.output.rfind("sluice ", 0), 0u);
    EXPECT_EQ(run("--bogus").exit_code, 2);
}

TEST(Binary, CheckConfigExitsZeroOrOne) {
    const auto ok = run(std::string("--check-config ") + SLUICE_SOURCE_DIR + "/config/sluice.yaml");
    EXPECT_EQ(ok.exit_code, 0) << ok.output;
    EXPECT_NE(ok.output.find("OK"), std::string::npos);
    const std::string bad = temp_file("server:\n  listen: nope\nproviders:\n  x: {kind: wat}\n");
    const auto fail = run("--check-config " + bad);
    EXPECT_EQ(fail.exit_code, 1);
    EXPECT_NE(fail.output.find("server.listen (line 2)"), std::string::npos) << fail.output;
    EXPECT_NE(fail.output.find("providers.x.kind (line 4)"), std::string::npos) << fail.output;
    EXPECT_EQ(run("--config /nonexistent.yaml").exit_code, 1);
    std::remove(bad.c_str());
}

TEST(Binary, PortInUseIsAnError) {
    MockUpstream holder;  // something else listens on this port
    const std::string cfg = temp_file("server:\n  listen: \"127.0.0.1:" + std::to_string(holder.port()) +
                                      "\"\nproviders:\n  mock: {kind: mock}\n");
    const auto r = run("--config " + cfg);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("cannot listen on"), std::string::npos) << r.output;
    std::remove(cfg.c_str());
}

TEST(Binary, I5_SecretsNeverReachTheOutput) {
    MockUpstream up;
    const std::string provider_key = "sk-canary-provider-7f3a9c1e5b";
    const std::string client_key = "canary-client-key-b2d4f6";
    SluiceProcess child("  threads: 1\n",
                        "log:\n  level: trace\n  format: json\n"
                        "providers:\n  up:\n    kind: openai\n    base_url: \"" +
                            up.base_url() +
                            "\"\n    api_key: \"${CANARY_PROVIDER_KEY}\"\n"
                            "routes:\n  - model: \"*\"\n    targets: [{provider: up}]\n"
                            "keys:\n  - name: canary\n    key: \"${CANARY_CLIENT_KEY}\"\n",
                        {{"CANARY_PROVIDER_KEY", provider_key}, {"CANARY_CLIENT_KEY", client_key}});
    ASSERT_TRUE(child.ready());
    const std::uint16_t port = child.port();
    {
        Client c(port);
        const std::vector<std::pair<std::string, std::string>> auth = {
            {"Authorization", "Bearer " + client_key}};
        const std::string base = R"({"model":"m","messages":[{"role":"user","content":"hi"}])";
        EXPECT_EQ(c.post_json("/v1/chat/completions", base + "}", auth).status, 200);
        EXPECT_EQ(c.post_json("/v1/chat/completions", base + R"(,"stream":true})", auth).status, 200);
        // The provider echoes its key in an error; sluice must scrub it.
        const auto e =
            c.post_json("/v1/chat/completions",
                        base + R"(,"mock":{"status":401,"message":"bad key )" + provider_key + "\"}}", auth);
        EXPECT_EQ(e.status, 502);
        EXPECT_EQ(e.body.find(provider_key), std::string::npos);
        const auto e2 = c.post_json(
            "/v1/chat/completions",
            base + R"(,"mock":{"status":429,"message":"limit for )" + provider_key + "\"}}", auth);
        EXPECT_EQ(e2.body.find(provider_key), std::string::npos);
        EXPECT_EQ(c.post_json("/v1/chat/completions", base + "}", {{"x-api-key", client_key + "x"}}).status,
                  401);
        EXPECT_EQ(c.request("GET", "/v1/models", "", auth).status, 200);
    }
    child.signal(SIGTERM);
    child.wait_exit();
    const std::string output = child.output();
    EXPECT_NE(output.find("\"msg\":\"access\""), std::string::npos) << output;
    EXPECT_EQ(output.find(provider_key), std::string::npos) << output;
    EXPECT_EQ(output.find(client_key), std::string::npos) << output;
}

TEST(Binary, E1_ConnectRefusedFailsOverAndTheAccessLogRecordsEveryAttempt) {
    MockUpstream up;
    std::uint16_t dead_port = 0;
    {
        MockUpstream gone;
        dead_port = gone.port();  // nothing listens here any more: connection refused
    }
    for (const std::string format : {"json", "text"}) {
        SluiceProcess d("  threads: 1\n",
                        "log:\n  format: " + format +
                            "\nproviders:\n  down:\n    kind: openai\n    base_url: \"http://127.0.0.1:" +
                            std::to_string(dead_port) + "/v1\"\n  up:\n    kind: openai\n    base_url: \"" +
                            up.base_url() +
                            "\"\nroutes:\n  - model: m\n    strategy: fallback\n"
                            "    targets: [{provider: down}, {provider: up, model: mock-gpt-4o}]\n");
        ASSERT_TRUE(d.ready());
        {
            Client c(d.port());
            const auto r = c.post_json("/v1/chat/completions",
                                       R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
            EXPECT_EQ(r.status, 200);
            EXPECT_EQ(r.header("x-sluice-attempts"), "2");
        }
        d.signal(SIGTERM);
        d.wait_exit();
        const std::string output = d.output();
        if (format == "json") {
            EXPECT_NE(
                output.find(
                    R"("attempts":[{"route":"m","provider":"down","model":"m","status":0,"error":"upstream_connect_failed","duration_ms":)"),
                std::string::npos)
                << output;
            EXPECT_NE(
                output.find(
                    R"({"route":"m","provider":"up","model":"mock-gpt-4o","status":200,"error":null,"duration_ms":)"),
                std::string::npos)
                << output;
        } else {
            EXPECT_NE(output.find("attempts=down/m:0:upstream_connect_failed:"), std::string::npos) << output;
            EXPECT_NE(output.find(",up/mock-gpt-4o:200:-:"), std::string::npos) << output;
        }
    }
}

// The release binary runs on mimalloc (the allocator measured in bench/RESULTS.md); a link that
// silently dropped it would leave glibc's malloc in place and only the benchmark would notice.
TEST(Binary, RunsOnTheAllocatorItWasBuiltWith) {
    SluiceProcess gw(
        "  threads: 1\n",
        "providers:\n  m: {kind: mock}\nroutes:\n  - model: \"m\"\n    targets: [{provider: m}]\n");
    ASSERT_TRUE(gw.ready()) << gw.output();
    const std::string output = gw.output();
    EXPECT_NE(output.find(std::string(" on ") + SLUICE_EXPECTED_ALLOCATOR), std::string::npos) << output;
}

}  // namespace
}  // namespace sluice::test
