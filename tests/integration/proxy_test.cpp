// sluice in-process against the in-repo mock upstream, over plain HTTP and TLS.
#include <atomic>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_upstream.hpp"
#include "sluice_process.hpp"
#include "test_certs.hpp"

namespace sluice::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kProviderKey = "sk-provider-secret-0123456789";
constexpr const char* kClientKey = "client-key-abcdef";

std::string config(const MockUpstream& up, const std::string& extra_provider = "", bool with_keys = true) {
    std::string y = "providers:\n  up:\n    kind: openai\n    base_url: \"" + up.base_url() +
                    "\"\n    api_key: \"" + kProviderKey +
                    "\"\n    first_byte_timeout: 2s\n"
                    "    idle_timeout: 1s\n";
    if (up.tls()) {
        y += "    ca_file: \"" + test_certs().ca_cert + "\"\n";
    }
    y += extra_provider;
    // One attempt and no breaker: these tests check what a single exchange does with each
    // fault (routing_test.cpp covers retries, fallbacks and breakers).
    y += "routes:\n  - model: \"alias-*\"\n    targets: [{provider: up, model: \"mock-gpt-4o\"}]\n"
         "    retries: {attempts: 1}\n    breaker: {enabled: false}\n"
         "  - model: \"*\"\n    targets: [{provider: up}]\n"
         "    retries: {attempts: 1}\n    breaker: {enabled: false}\n";
    if (with_keys) {
        y += std::string("keys:\n  - name: team\n    key: \"") + kClientKey + "\"\n";
    }
    return y;
}

const std::vector<std::pair<std::string, std::string>> kAuth = {
    {"Authorization", std::string("Bearer ") + kClientKey}};

std::string chat(bool stream, const std::string& mock = "", const std::string& model = "mock-gpt-4o") {
    std::string body = R"({"model":")" + model +
                       R"(","messages":[{"role":"user","content":"hello there"}],"stream":)" +
                       (stream ? "true" : "false");
    if (!mock.empty()) {
        body += ",\"mock\":" + mock;
    }
    return body + "}";
}

class Proxy : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        MockUpstreamOptions o;
        if (GetParam()) {
            o.cert_file = test_certs().server_cert;
            o.key_file = test_certs().server_key;
        }
        up_ = std::make_unique<MockUpstream>(o);
        gw_ = std::make_unique<Gateway>(config(*up_));
    }
    std::unique_ptr<MockUpstream> up_;
    std::unique_ptr<Gateway> gw_;
};

TEST_P(Proxy, NonStreamChatCompletes) {
    Client c(gw_->port());
    const auto r = c.post_json("/v1/chat/completions", chat(false), kAuth);
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = json::parse(r.body);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_NE(j["choices"][0]["message"]["content"].get<std::string>().find("hello there"),
              std::string::npos);
    EXPECT_EQ(j["usage"]["prompt_tokens"], 5);
    EXPECT_FALSE(r.header("x-request-id").empty());
}

TEST_P(Proxy, StreamRelaysEveryEventAndHidesInjectedUsage) {
    Client c(gw_->port());
    const auto r = c.post_json("/v1/chat/completions", chat(true), kAuth);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("content-type"), "text/event-stream");
    const auto data = sse_data(r.body);
    ASSERT_GE(data.size(), 4u);
    EXPECT_EQ(data.back(), "[DONE]");
    std::string text;
    for (std::size_t i = 0; i + 1 < data.size(); ++i) {
        const auto j = json::parse(data[i]);
        EXPECT_FALSE(j.contains("usage")) << data[i];
        ASSERT_FALSE(j["choices"].empty());
        text += j["choices"][0]["delta"].value("content", "");
    }
    EXPECT_EQ(text, "This is a mock answer from sluice. You said: hello there");
    // sluice asked upstream for usage on the client's behalf.
    const auto sent = json::parse(up_->requests().back().body);
    EXPECT_TRUE(sent["stream_options"]["include_usage"].get<bool>());
}

TEST_P(Proxy, StreamKeepsUsageWhenClientAsks) {
    Client c(gw_->port());
    const auto r = c.post_json(
        "/v1/chat/completions",
        R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b c"}]})",
        kAuth);
    const auto data = sse_data(r.body);
    ASSERT_GE(data.size(), 2u);
    const auto usage_chunk = json::parse(data[data.size() - 2]);
    EXPECT_TRUE(usage_chunk["choices"].empty());
    EXPECT_EQ(usage_chunk["usage"]["prompt_tokens"], 6);
}

TEST_P(Proxy, ToolCallsStreamWithArgumentDeltasIntact) {
    Client c(gw_->port());
    const std::string body =
        R"({"model":"m","stream":true,"messages":[{"role":"user","content":"weather?"}],)"
        R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]})";
    const auto r = c.post_json("/v1/chat/completions", body, kAuth);
    ASSERT_EQ(r.status, 200);
    std::string args;
    std::string name;
    for (const auto& d : sse_data(r.body)) {
        if (d == "[DONE]") {
            continue;
        }
        const auto j = json::parse(d);
        const auto& delta = j["choices"][0]["delta"];
        if (delta.contains("tool_calls")) {
            const auto& f = delta["tool_calls"][0]["function"];
            if (f.contains("name")) {
                name = f["name"];
            }
            args += f.value("arguments", "");
        }
    }
    EXPECT_EQ(name, "get_weather");
    EXPECT_EQ(json::parse(args), json::parse(R"({"city":"mock"})"));
}

TEST_P(Proxy, EmbeddingsAndLegacyCompletions) {
    Client c(gw_->port());
    auto r = c.post_json("/v1/embeddings",
                         R"({"model":"mock-embedding","input":["a","b"],"encoding_format":"base64"})", kAuth);
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    ASSERT_EQ(j["data"].size(), 2u);
    EXPECT_TRUE(j["data"][0]["embedding"].is_string());
    r = c.post_json("/v1/completions", R"({"model":"m","prompt":"Say this"})", kAuth);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["object"], "text_completion");
}

TEST_P(Proxy, ProviderKeyInjectedAndClientKeyNotForwarded) {
    Client c(gw_->port());
    ASSERT_EQ(c.post_json("/v1/chat/completions", chat(false), {{"x-api-key", kClientKey}}).status, 200);
    const auto reqs = up_->requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].header("authorization"), std::string("Bearer ") + kProviderKey);
    for (const auto& [k, v] : reqs[0].headers) {
        EXPECT_EQ(v.find(kClientKey), std::string::npos) << k;
    }
    EXPECT_EQ(reqs[0].body.find(kClientKey), std::string::npos);
}

TEST_P(Proxy, TransparencyHeadersSayWhatHappened) {
    Client c(gw_->port());
    const auto start = std::chrono::steady_clock::now();
    auto r = c.post_json("/v1/chat/completions", chat(false, R"({"delay_ms":50})", "alias-fast"), kAuth);
    const auto elapsed_us =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start)
            .count();
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.header("x-sluice-provider"), "up");
    EXPECT_EQ(r.header("x-sluice-model"), "mock-gpt-4o");
    EXPECT_EQ(r.header("x-sluice-attempts"), "1");
    const long overhead = std::stol(r.header("x-sluice-overhead-us"));
    EXPECT_GE(overhead, 0);
    EXPECT_LT(overhead, elapsed_us - 40000);  // the provider's 50 ms delay is not sluice's overhead
    EXPECT_NE(r.header("server-timing").find("upstream;dur="), std::string::npos);
    // Milliseconds with three decimals; the upstream's share holds the provider's 50 ms delay.
    std::smatch timing;
    const std::string server_timing = r.header("server-timing");
    ASSERT_TRUE(std::regex_match(server_timing, timing,
                                 std::regex(R"(sluice;dur=(\d+\.\d{3}), upstream;dur=(\d+\.\d{3}))")))
        << server_timing;
    EXPECT_NEAR(std::stod(timing[1].str()) * 1000, static_cast<double>(overhead), 1.0);
    EXPECT_GE(std::stod(timing[2].str()), 40.0);
    r = c.post_json("/v1/chat/completions", chat(true), kAuth);
    EXPECT_EQ(r.header("x-sluice-provider"), "up");
    EXPECT_FALSE(r.header("x-sluice-overhead-us").empty());
    r = c.post_json("/v1/chat/completions", chat(false, R"({"status":503})"), kAuth);
    EXPECT_EQ(r.header("x-sluice-attempts"), "1");  // errors from a provider say so too
    // A model name with CR/LF (via a JSON escape) is refused before it goes anywhere.
    const auto before = up_->request_count();
    r = c.post_json("/v1/chat/completions", chat(false, "", R"(evil\r\nx-injected: 1)"), kAuth);
    ASSERT_EQ(r.status, 400);
    EXPECT_EQ(json::parse(r.body)["error"]["param"], "model");
    EXPECT_TRUE(r.header("x-injected").empty());
    EXPECT_EQ(up_->request_count(), before);
}

TEST_P(Proxy, ModelAliasIsRewrittenUpstream) {
    Client c(gw_->port());
    const auto r = c.post_json("/v1/chat/completions", chat(false, "", "alias-fast"), kAuth);
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(json::parse(up_->requests().back().body)["model"], "mock-gpt-4o");
}

TEST_P(Proxy, ConnectionsAreReused) {
    Client c(gw_->port());
    for (int i = 0; i < 100; ++i) {
        ASSERT_EQ(c.post_json("/v1/chat/completions", chat(i % 2 == 0), kAuth).status, 200);
    }
    // One client connection lands on one worker: its pool keeps one upstream connection.
    EXPECT_LE(up_->connections(), gw_->server().worker_count());
    // New client connections spread over workers but still reuse the pooled ones.
    for (int i = 0; i < 20; ++i) {
        Client fresh(gw_->port());
        ASSERT_EQ(fresh.post_json("/v1/chat/completions", chat(false), kAuth).status, 200);
    }
    EXPECT_LE(up_->connections(), gw_->server().worker_count());
}

TEST_P(Proxy, InvalidKeyGets401WithoutUpstreamContact) {
    Client c(gw_->port());
    auto r = c.post_json("/v1/chat/completions", chat(false), {{"Authorization", "Bearer wrong"}});
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "invalid_api_key");
    r = c.post_json("/v1/chat/completions", chat(false));
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(up_->request_count(), 0u);
    EXPECT_EQ(up_->connections(), 0u);
}

INSTANTIATE_TEST_SUITE_P(PlainAndTls, Proxy, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Tls" : "Plain"; });

class Faults : public ::testing::Test {
protected:
    void SetUp() override {
        up_ = std::make_unique<MockUpstream>();
        gw_ = std::make_unique<Gateway>(config(*up_));
    }
    std::unique_ptr<MockUpstream> up_;
    std::unique_ptr<Gateway> gw_;
};

TEST_F(Faults, StaleReusedConnectionIsRetriedOnceOnAFreshOne) {
    Client c(gw_->port());
    ASSERT_EQ(c.post_json("/v1/chat/completions", chat(false, R"({"drop_next":true})"), kAuth).status, 200);
    // The pooled connection dies on the next request before any response byte: sluice retries on
    // a fresh connection and the client never notices.
    const auto r = c.post_json("/v1/chat/completions", chat(false), kAuth);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(up_->connections(), 2u);
    EXPECT_EQ(up_->request_count(), 3u);
    // Streams too.
    ASSERT_EQ(c.post_json("/v1/chat/completions", chat(true, R"({"drop_next":true})"), kAuth).status, 200);
    const auto s = c.post_json("/v1/chat/completions", chat(true), kAuth);
    EXPECT_EQ(sse_data(s.body).back(), "[DONE]");
    EXPECT_EQ(up_->connections(), 3u);
}

TEST_F(Faults, F3_UpstreamCutGivesTerminalErrorEvent) {
    Client c(gw_->port());
    c.send_raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
               std::string(kClientKey) + "\r\nContent-Type: application/json\r\nContent-Length: " +
               std::to_string(chat(true, R"({"cut_after":3})").size()) + "\r\n\r\n" +
               chat(true, R"({"cut_after":3})"));
    const std::string raw = c.read_until("\r\n0\r\n\r\n", 5s);
    bool complete = false;
    const std::string body = dechunk(raw, complete);
    EXPECT_TRUE(complete) << "read stopped by: " << c.last_read_error() << "\n" << raw;
    const auto data = sse_data(body);
    ASSERT_EQ(data.size(), 4u) << body;
    EXPECT_EQ(json::parse(data.back())["error"]["code"], "upstream_disconnect");
    EXPECT_EQ(body.find("[DONE]"), std::string::npos);
}

TEST_F(Faults, F3_StreamSilenceGivesTimeoutEvent) {
    Client c(gw_->port());
    // idle_timeout is 1s; the next event would come 2.5s later.
    const auto r = c.post_json("/v1/chat/completions", chat(true, R"({"chunk_delay_ms":2500})"), kAuth);
    const auto data = sse_data(r.body);
    ASSERT_GE(data.size(), 2u);
    EXPECT_EQ(json::parse(data.back())["error"]["code"], "upstream_timeout");
}

TEST_F(Faults, F3_EofDelimitedStreamWithoutDoneIsAnError) {
    Client c(gw_->port());
    const auto r =
        c.post_json("/v1/chat/completions", chat(true, R"({"eof_body":true,"no_done":true})"), kAuth);
    const auto data = sse_data(r.body);
    ASSERT_FALSE(data.empty());
    EXPECT_EQ(json::parse(data.back())["error"]["code"], "upstream_disconnect");
    const auto ok = c.post_json("/v1/chat/completions", chat(true, R"({"eof_body":true})"), kAuth);
    EXPECT_EQ(sse_data(ok.body).back(), "[DONE]");
}

TEST_F(Faults, F5_ClientAbortClosesUpstreamConnection) {
    {
        Client c(gw_->port());
        c.send_raw("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                   std::string(kClientKey) + "\r\nContent-Type: application/json\r\nContent-Length: " +
                   std::to_string(chat(true, R"({"chunk_delay_ms":200})").size()) + "\r\n\r\n" +
                   chat(true, R"({"chunk_delay_ms":200})"));
        const auto first = c.read_until("data: ", 5s);
        ASSERT_NE(first.find("200 OK"), std::string::npos);
        ASSERT_EQ(up_->open_connections(), 1u);
    }  // client gone
    for (int i = 0; i < 100 && up_->open_connections() > 0; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(up_->open_connections(), 0u);
}

TEST_F(Faults, E3_BlackHoleTimesOutWith504) {
    Client c(gw_->port());
    const auto start = std::chrono::steady_clock::now();
    const auto r = c.post_json("/v1/chat/completions", chat(false, R"({"black_hole":true})"), kAuth);
    EXPECT_EQ(r.status, 504);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "upstream_timeout");
    EXPECT_GE(std::chrono::steady_clock::now() - start, 1900ms);
}

TEST_F(Faults, SlowFirstByteWithinTimeoutSucceeds) {
    Client c(gw_->port());
    EXPECT_EQ(c.post_json("/v1/chat/completions", chat(true, R"({"delay_ms":800})"), kAuth).status, 200);
}

TEST_F(Faults, E7_UpstreamErrorsKeepStatusAndRetryAfter) {
    Client c(gw_->port());
    auto r = c.post_json(
        "/v1/chat/completions",
        chat(false, R"({"status":429,"retry_after":"7","message":"slow down sk-live-abcdefghijkl"})"), kAuth);
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.header("retry-after"), "7");
    auto j = json::parse(r.body);
    EXPECT_EQ(j["error"]["type"], "rate_limit_error");
    EXPECT_EQ(r.body.find("sk-live"), std::string::npos);
    // Each case below uses its own model: the 429 above paused mock-gpt-4o on this provider.
    r = c.post_json("/v1/chat/completions", chat(false, R"({"status":429,"retry_after_ms":1500})", "m-ms"),
                    kAuth);
    EXPECT_EQ(r.header("retry-after"), "2");
    r = c.post_json("/v1/chat/completions", chat(false, R"({"status":500})", "m-500"), kAuth);
    EXPECT_EQ(r.status, 500);
    EXPECT_TRUE(json::parse(r.body)["error"].contains("message"));
    r = c.post_json("/v1/chat/completions",
                    chat(true, R"({"status":503,"error_body":"<html>down</html>"})", "m-503"), kAuth);
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(json::parse(r.body)["error"]["type"], "server_error");
    r = c.post_json("/v1/chat/completions", chat(false, R"({"status":401})", "m-401"), kAuth);
    EXPECT_EQ(r.status, 502);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "upstream_auth_error");
}

TEST_F(Faults, E5_TruncatedNonStreamBodyGives502) {
    Client c(gw_->port());
    const auto r = c.post_json("/v1/chat/completions", chat(false, R"({"cut_after":0})"), kAuth);
    EXPECT_EQ(r.status, 502);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "upstream_disconnect");
}

TEST_F(Faults, E8_InterimResponsesAreSkipped) {
    Client c(gw_->port());
    auto r = c.post_json("/v1/chat/completions", chat(false, R"({"interim":true})"), kAuth);
    EXPECT_EQ(r.status, 200) << r.body;
    r = c.post_json("/v1/chat/completions", chat(true, R"({"interim":true})"), kAuth);
    EXPECT_EQ(sse_data(r.body).back(), "[DONE]");
}

TEST_F(Faults, D2_RedirectsAreNotFollowed) {
    Client c(gw_->port());
    const auto r = c.post_json("/v1/chat/completions", chat(false, R"({"redirect":302})"), kAuth);
    EXPECT_EQ(r.status, 502);
    EXPECT_TRUE(r.header("location").empty());
    EXPECT_EQ(up_->request_count(), 1u);
}

TEST_F(Faults, F2_OverlongSseLineEndsTheStream) {
    Client c(gw_->port());
    // Before any event reached the client the failure is a plain JSON 502 (F4's rule: no SSE
    // byte was sent yet), so a retry policy could still try elsewhere.
    const auto r = c.post_json("/v1/chat/completions", chat(true, R"({"long_line":2000000})"), kAuth);
    EXPECT_EQ(r.status, 502);
    const auto err = json::parse(r.body)["error"];
    EXPECT_EQ(err["type"], "server_error");
    // Ended by the line cap, not by the idle timeout that would follow the mock's silence.
    EXPECT_NE(err["message"].get<std::string>().find("1048576 bytes"), std::string::npos) << err;
}

TEST(Upstream, F2_ThreeHundredMegabytesOfDataLinesInOneEventKeepMemoryBounded) {
    // An upstream streams 300 MB of `data:` lines and never ends the event. sluice's event cap
    // (8 MiB) ends the request; the process's peak memory grows by far less than the stream.
    MockUpstream up;
    const std::string root = up.base_url().substr(0, up.base_url().size() - 3);  // without /v1
    SluiceProcess p("  threads: 1\n",
                    "log:\n  level: warn\nproviders:\n"
                    "  oai:\n    kind: openai\n    base_url: \"" +
                        up.base_url() +
                        "\"\n    api_key: k\n"
                        "  claude:\n    kind: anthropic\n    base_url: \"" +
                        root +
                        "\"\n    api_key: k\n"
                        "routes:\n  - model: \"oai\"\n    targets: [{provider: oai}]\n"
                        "  - model: \"claude\"\n    targets: [{provider: claude}]\n");
    ASSERT_TRUE(p.ready()) << p.output();
    const long before = p.status_kib("VmRSS");
    ASSERT_GT(before, 0);
    for (const char* model : {"oai", "claude"}) {
        up.script(R"({"data_lines_mb":300})");
        Client c(p.port(), 60s);
        std::string body = R"({"model":")";
        body += model;
        body += R"(","stream":true,"max_tokens":10,"messages":[{"role":"user","content":"x"}]})";
        const auto r = c.post_json("/v1/chat/completions", body);
        EXPECT_EQ(r.status, 502) << model << ": " << r.body.substr(0, 300);
        EXPECT_NE(r.body.find("bytes"), std::string::npos) << model << ": " << r.body.substr(0, 300);
    }
    const long peak = p.status_kib("VmHWM");
    std::printf("RSS before %ld KiB, peak %ld KiB\n", before, peak);
    EXPECT_LT(peak - before, 64 * 1024) << "RSS before " << before << " KiB, peak " << peak << " KiB";
    Client c(p.port());
    EXPECT_EQ(c.request("GET", "/healthz").status, 200);
}

TEST_F(Faults, F4_JsonAnswerToStreamRequestIsAnError) {
    Client c(gw_->port());
    const auto r = c.post_json("/v1/chat/completions", chat(true, R"({"json_for_stream":true})"), kAuth);
    EXPECT_EQ(r.status, 502);
}

TEST(Upstream, StopWithRequestsInFlightIsClean) {
    MockUpstream up;
    auto gw = std::make_unique<Gateway>(config(up, "", false));
    std::vector<std::thread> clients;
    std::atomic<int> ended{0};
    for (int i = 0; i < 4; ++i) {
        clients.emplace_back([&, i] {
            try {
                Client c(gw->port());
                c.post_json("/v1/chat/completions",
                            chat(i % 2 == 0, i < 2 ? R"({"black_hole":true})" : R"({"chunk_delay_ms":300})"));
            } catch (...) {
            }
            ended.fetch_add(1);
        });
    }
    for (int i = 0; i < 500 && up.open_connections() < 4; ++i) {
        std::this_thread::sleep_for(10ms);
    }
    ASSERT_GE(up.open_connections(), 1u);  // exchanges are in flight when sluice stops
    gw.reset();  // stop with four exchanges in flight: nothing may touch freed state
    for (auto& t : clients) {
        t.join();
    }
    EXPECT_EQ(ended.load(), 4);
}

TEST(Upstream, AzureDeploymentsOverTheWire) {
    MockUpstream up;
    const std::string base = "http://127.0.0.1:" + std::to_string(up.port());
    const std::string y = "providers:\n  az:\n    kind: azure\n    base_url: \"" + base +
                          "\"\n    api_key: \"azure-key-123\"\n  az1:\n    kind: azure\n    base_url: \"" +
                          base +
                          "\"\n    api_key: \"azure-key-123\"\n    api_version: v1\n"
                          "routes:\n  - model: \"gpt-4o\"\n    targets: [{provider: az, model: \"my-4o\"}]\n"
                          "  - model: \"v1-*\"\n    targets: [{provider: az1, model: \"dep-v1\"}]\n";
    Gateway gw(y);
    Client c(gw.port());
    auto r = c.post_json("/v1/chat/completions", chat(true, "", "gpt-4o"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(sse_data(r.body).back(), "[DONE]");
    auto reqs = up.requests();
    ASSERT_EQ(reqs.size(), 1u);
    EXPECT_EQ(reqs[0].target, "/openai/deployments/my-4o/chat/completions?api-version=2024-10-21");
    EXPECT_EQ(reqs[0].header("api-key"), "azure-key-123");
    EXPECT_TRUE(reqs[0].header("authorization").empty());
    r = c.post_json("/v1/embeddings", R"({"model":"v1-embed","input":"x"})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(up.requests().back().target, "/openai/v1/embeddings");
    EXPECT_EQ(json::parse(up.requests().back().body)["model"], "dep-v1");
    // Azure's retry hint in milliseconds becomes Retry-After.
    r = c.post_json("/v1/chat/completions",
                    chat(false, R"({"status":429,"headers":{"x-ms-retry-after-ms":"2500"}})", "gpt-4o"));
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.header("retry-after"), "3");
}

TEST(Upstream, E1_ConnectRefusedGives502) {
    std::uint16_t dead_port = 0;
    {
        MockUpstream tmp;
        dead_port = tmp.port();
    }
    const std::string y =
        "providers:\n  up:\n    kind: openai\n    base_url: \"http://127.0.0.1:" + std::to_string(dead_port) +
        "/v1\"\nroutes:\n  - model: \"*\"\n    targets: [{provider: up}]\n";
    Gateway gw(y);
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat(false));
    EXPECT_EQ(r.status, 502);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "upstream_connect_failed");
}

TEST(Upstream, E2_UntrustedCertificateGives502TlsError) {
    MockUpstreamOptions o;
    o.cert_file = test_certs().untrusted_cert;
    o.key_file = test_certs().untrusted_key;
    MockUpstream up(o);
    const std::string y = "providers:\n  up:\n    kind: openai\n    base_url: \"" + up.base_url() +
                          "\"\n    api_key: \"" + kProviderKey + "\"\n    ca_file: \"" +
                          test_certs().ca_cert +
                          "\"\nroutes:\n  - model: \"*\"\n    targets: [{provider: up}]\n";
    Gateway gw(y);
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat(false));
    EXPECT_EQ(r.status, 502);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "upstream_tls_error");
    EXPECT_EQ(up.request_count(), 0u);  // the key never left
}

TEST(Upstream, E5_AnEofDelimitedBodyCutWithoutTlsCloseNotifyIs502NotAnAnswer) {
    MockUpstreamOptions o;
    o.cert_file = test_certs().server_cert;
    o.key_file = test_certs().server_key;
    MockUpstream up(o);
    const std::string y = "providers:\n  up:\n    kind: openai\n    base_url: \"" + up.base_url() +
                          "\"\n    api_key: \"" + kProviderKey + "\"\n    ca_file: \"" +
                          test_certs().ca_cert +
                          "\"\nroutes:\n  - model: \"*\"\n    targets: [{provider: up}]\n"
                          "    retries: {attempts: 1}\n";
    Gateway gw(y);
    Client c(gw.port());
    // A JSON body with no Content-Length ends at EOF. Cut without close_notify, anyone on the
    // path could have ended it early, so it is not passed on as the answer.
    const std::string answer =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
        R"({"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,)"
        R"("message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]})";
    up.enqueue_raw(answer);
    auto r = c.post_json("/v1/chat/completions", chat(false));
    EXPECT_EQ(r.status, 502) << r.body;
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "upstream_disconnect") << r.body;
    // The same bytes ended by close_notify are a complete answer.
    up.enqueue_raw(answer, true);
    r = c.post_json("/v1/chat/completions", chat(false));
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["choices"][0]["message"]["content"], "hi") << r.body;
}

TEST(Upstream, ModelsListsExactRoutesAndFilteredProviderModels) {
    MockUpstream up;
    const std::string y =
        "providers:\n  up:\n    kind: openai\n    base_url: \"" + up.base_url() +
        "\"\n  mock: {kind: mock}\nroutes:\n  - model: \"my-alias\"\n    targets: [{provider: mock, model: "
        "mock-gpt-4o}]\n"
        "  - model: \"mock-gpt-*\"\n    targets: [{provider: up}]\n"
        "keys:\n  - {name: a, key: ka}\n  - {name: b, key: kb, models: [\"mock-gpt-4o-*\"]}\n";
    Gateway gw(y);
    Client c(gw.port());
    auto r = c.request("GET", "/v1/models", "", {{"Authorization", "Bearer ka"}});
    ASSERT_EQ(r.status, 200) << r.body;
    std::vector<std::string> ids;
    const auto listed = json::parse(r.body);
    for (const auto& m : listed["data"]) {
        ids.push_back(m["id"]);
    }
    EXPECT_EQ(ids, (std::vector<std::string>{"my-alias", "mock-gpt-4o", "mock-gpt-4o-mini"})) << r.body;
    r = c.request("GET", "/v1/models", "", {{"Authorization", "Bearer kb"}});
    EXPECT_EQ(json::parse(r.body)["data"].size(), 1u);
    r = c.request("GET", "/v1/models/mock-gpt-4o", "", {{"Authorization", "Bearer ka"}});
    EXPECT_EQ(json::parse(r.body)["id"], "mock-gpt-4o");
    r = c.request("GET", "/v1/models/nope", "", {{"Authorization", "Bearer ka"}});
    EXPECT_EQ(r.status, 404);
    // Cached for a minute: one upstream fetch for all of the above.
    EXPECT_EQ(up.request_count(), 1u);
    EXPECT_EQ(up.requests()[0].target, "/v1/models");
}

}  // namespace
}  // namespace sluice::test
