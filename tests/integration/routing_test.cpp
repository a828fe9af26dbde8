// Routing resilience end to end: retries, Retry-After, fallbacks (by exhaustion and by error
// class), circuit breakers with half-open probes, strategies, first-token timeouts and bounds.
// Two in-process mock upstreams ("a" and "b") are scripted independently.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_upstream.hpp"

namespace sluice::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string chat(bool stream = false, const std::string& model = "m") {
    return R"({"model":")" + model + R"(","messages":[{"role":"user","content":"hello there"}],"stream":)" +
           (stream ? "true" : "false") + "}";
}

long ms_since(Clock::time_point t) {
    return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count());
}

/// Two mock upstreams behind providers "a" and "b"; `routes` is the YAML of the routes list.
class Routing : public ::testing::Test {
protected:
    /// `a_extra`: more YAML keys for provider "a".
    void start(const std::string& routes, const std::string& a_extra = "", int threads = 2) {
        std::string y = "providers:\n";
        for (const auto& [name, up] : {std::pair{"a", a_.get()}, std::pair{"b", b_.get()}}) {
            y += std::string("  ") + name + ":\n    kind: openai\n    base_url: \"" + up->base_url() +
                 "\"\n    first_byte_timeout: 2s\n    idle_timeout: 2s\n" + (up == a_.get() ? a_extra : "");
        }
        y +=
            "  claude:\n    kind: anthropic\n    base_url: \"http://127.0.0.1:" + std::to_string(b_->port()) +
            "\"\n    api_key: \"sk-ant-test\"\n";
        y += "routes:\n" + routes;
        gw_ = std::make_unique<Gateway>(y, threads);
    }
    HttpResponse post(const std::string& body) {
        Client c(gw_->port());
        return c.post_json("/v1/chat/completions", body);
    }

    std::unique_ptr<MockUpstream> a_ = std::make_unique<MockUpstream>();
    std::unique_ptr<MockUpstream> b_ = std::make_unique<MockUpstream>();
    std::unique_ptr<Gateway> gw_;
};

TEST_F(Routing, E7_FallsBackWithinOneRequestAfterA500) {
    start("  - model: m\n    strategy: fallback\n    targets: [{provider: a}, {provider: b}]\n");
    a_->script(R"({"status":500})");
    const auto r = post(chat());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-sluice-attempts"), "2");
    EXPECT_EQ(r.header("x-sluice-provider"), "b");
    EXPECT_EQ(a_->request_count(), 1u);
    EXPECT_EQ(b_->request_count(), 1u);
    // The fallback strategy returns to the first target once it works again.
    EXPECT_EQ(post(chat()).header("x-sluice-provider"), "a");
}

TEST_F(Routing, RetryAfterMsIsHonouredBeforeTheNextAttempt) {
    start(
        "  - model: m\n    targets: [{provider: a}]\n    retries: {attempts: 2, backoff_base: 0ms, "
        "backoff_cap: 0ms}\n");
    a_->script(R"({"status":429,"retry_after_ms":300})");
    const auto r = post(chat());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-sluice-attempts"), "2");
    const auto reqs = a_->requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_GE(reqs[1].at - reqs[0].at, 300ms);
    EXPECT_NE(r.header("server-timing").find("retry-wait;dur="), std::string::npos)
        << r.header("server-timing");
}

TEST_F(Routing, E7_RetryAfterOverTheCapMovesToTheNextTargetWithoutWaiting) {
    start(
        "  - model: m\n    strategy: fallback\n    targets: [{provider: a}, {provider: b}]\n"
        "    retries: {retry_after_cap: 1s}\n");
    a_->script(R"({"status":429,"retry_after":"30"})");
    const auto began = Clock::now();
    const auto r = post(chat());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_LT(ms_since(began), 900);
    EXPECT_EQ(r.header("x-sluice-provider"), "b");
    // The provider asked for 30 s: later requests do not go to it meanwhile.
    for (int i = 0; i < 5; ++i) {
        EXPECT_EQ(post(chat()).header("x-sluice-provider"), "b");
    }
    EXPECT_EQ(a_->request_count(), 1u);
}

TEST_F(Routing, BreakerOpensAfterConsecutiveFailuresThenClosesAfterAProbe) {
    start(
        "  - model: m\n    targets: [{provider: a}, {provider: b}]\n"
        "    breaker: {consecutive_failures: 3, cooldown: 1500ms}\n");
    a_->set_default(R"({"status":500})");
    for (int i = 0; i < 30; ++i) {
        ASSERT_EQ(post(chat()).status, 200);
    }
    // Three failures opened the circuit; from then on "a" saw nothing.
    EXPECT_EQ(a_->request_count(), 3u);
    a_->set_default("");
    std::this_thread::sleep_for(1600ms);
    // Half-open: one probe reaches "a", succeeds and closes the circuit.
    for (int i = 0; i < 40; ++i) {
        ASSERT_EQ(post(chat()).status, 200);
    }
    EXPECT_GT(a_->request_count(), 4u);  // back in rotation (about half of 40)
}

TEST_F(Routing, FailedProbeKeepsTheCircuitOpen) {
    start(
        "  - model: m\n    targets: [{provider: a}, {provider: b}]\n"
        "    breaker: {consecutive_failures: 2, cooldown: 1s}\n");
    a_->set_default(R"({"status":503})");
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(post(chat()).status, 200);
    }
    EXPECT_EQ(a_->request_count(), 2u);
    std::this_thread::sleep_for(1100ms);
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(post(chat()).status, 200);
    }
    EXPECT_EQ(a_->request_count(), 3u);  // exactly one probe, which failed
}

TEST_F(Routing, StreamCutAfterItsFirstEventIsNotRetried) {
    start(
        "  - model: m\n    strategy: fallback\n    targets: [{provider: a}, {provider: b}]\n"
        "    retries: {on: [connect_error, timeout, reset, 500]}\n");
    a_->script(R"({"cut_after":1})");
    const auto r = post(chat(true));
    ASSERT_EQ(r.status, 200);
    const auto data = sse_data(r.body);
    ASSERT_EQ(data.size(), 2u) << r.body;
    EXPECT_EQ(json::parse(data.back())["error"]["code"], "upstream_disconnect");
    EXPECT_EQ(b_->request_count(), 0u);
    EXPECT_EQ(r.header("x-sluice-attempts"), "1");
}

TEST_F(Routing, StreamWithoutAFirstTokenInTimeMovesToTheNextTarget) {
    start(
        "  - model: m\n    strategy: fallback\n    targets: [{provider: a}, {provider: b}]\n"
        "    timeouts: {first_token: 300ms}\n");
    a_->script(R"({"first_event_delay_ms":1500})");
    const auto began = Clock::now();
    const auto r = post(chat(true));
    ASSERT_EQ(r.status, 200);
    EXPECT_LT(ms_since(began), 1400);
    EXPECT_EQ(sse_data(r.body).back(), "[DONE]");
    EXPECT_EQ(r.header("x-sluice-provider"), "b");
    EXPECT_EQ(r.header("x-sluice-attempts"), "2");
}

TEST_F(Routing, PerTargetTimeoutOverridesTheRoute) {
    start(
        "  - model: m\n    strategy: fallback\n"
        "    targets: [{provider: a, timeouts: {first_byte: 200ms}}, {provider: b}]\n"
        "    timeouts: {first_byte: 5s}\n");
    a_->script(R"({"delay_ms":1500})");
    const auto began = Clock::now();
    const auto r = post(chat());
    ASSERT_EQ(r.status, 200);
    EXPECT_LT(ms_since(began), 1200);
    EXPECT_EQ(r.header("x-sluice-provider"), "b");
}

TEST_F(Routing, LeastLatencySendsMostTrafficToTheFasterTarget) {
    start("  - model: m\n    strategy: least_latency\n    targets: [{provider: a}, {provider: b}]\n");
    a_->set_default(R"({"delay_ms":80})");
    for (int i = 0; i < 60; ++i) {
        ASSERT_EQ(post(chat()).status, 200);
    }
    EXPECT_GE(b_->request_count(), 50u) << "a=" << a_->request_count();
}

TEST_F(Routing, LeastBusySpreadsConcurrentRequests) {
    // One worker: requests arriving together are still admitted one after the other, so each
    // sees the previous one in flight (with two workers two could tie and pick the same target).
    start("  - model: m\n    strategy: least_busy\n    targets: [{provider: a}, {provider: b}]\n", "", 1);
    a_->set_default(R"({"delay_ms":300})");
    b_->set_default(R"({"delay_ms":300})");
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < 8; ++i) {
        threads.emplace_back([&] { ok += post(chat()).status == 200 ? 1 : 0; });
        std::this_thread::sleep_for(20ms);
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(ok.load(), 8);
    EXPECT_EQ(a_->request_count(), 4u);
    EXPECT_EQ(b_->request_count(), 4u);
}

TEST_F(Routing, AttemptsAreBounded) {
    start(
        "  - model: m\n    targets: [{provider: a}, {provider: b}]\n"
        "    retries: {attempts: 3, backoff_base: 10ms, backoff_cap: 20ms}\n    breaker: {enabled: false}\n");
    a_->set_default(R"({"status":502})");
    b_->set_default(R"({"status":502})");
    const auto r = post(chat());
    EXPECT_EQ(r.status, 502);
    EXPECT_EQ(r.header("x-sluice-attempts"), "3");
    EXPECT_EQ(a_->request_count() + b_->request_count(), 3u);
}

TEST_F(Routing, TotalDeadlineBoundsAllAttempts) {
    start(
        "  - model: m\n    targets: [{provider: a}, {provider: b}]\n"
        "    retries: {attempts: 20, backoff_base: 1ms, backoff_cap: 1ms}\n    breaker: {enabled: false}\n"
        "    timeouts: {total: 1s, first_byte: 300ms}\n");
    a_->set_default(R"({"delay_ms":3000})");
    b_->set_default(R"({"delay_ms":3000})");
    const auto began = Clock::now();
    const auto r = post(chat());
    EXPECT_EQ(r.status, 504) << r.body;
    EXPECT_GE(ms_since(began), 900);
    EXPECT_LT(ms_since(began), 2000);
    EXPECT_LE(a_->request_count() + b_->request_count(), 4u);
    EXPECT_NE(json::parse(r.body)["error"]["message"].get<std::string>().find("total deadline"),
              std::string::npos);
}

TEST_F(Routing, ContextLengthErrorsGoToTheLongerContextRoute) {
    start(
        "  - model: m\n    targets: [{provider: a}]\n    fallback_on: {context_length_exceeded: long}\n"
        "  - name: long\n    targets: [{provider: b, model: big-context-model}]\n");
    a_->script(
        R"({"status":400,"code":"context_length_exceeded","message":"maximum context length is 8192 tokens"})");
    const auto r = post(chat());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-sluice-route"), "long");
    EXPECT_EQ(r.header("x-sluice-model"), "big-context-model");
    ASSERT_EQ(b_->request_count(), 1u);
    EXPECT_EQ(json::parse(b_->requests()[0].body)["model"], "big-context-model");
    // Any other client error is the answer: no retry, no fallback.
    a_->script(R"({"status":400,"code":"invalid_value","message":"temperature too high"})");
    const auto bad = post(chat());
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(b_->request_count(), 1u);
    EXPECT_EQ(a_->request_count(), 2u);
}

TEST_F(Routing, ContentPolicyRefusalsGoToAnotherRoute) {
    start(
        "  - model: m\n    targets: [{provider: a}]\n    fallback_on: {content_policy: [lenient]}\n"
        "  - name: lenient\n    targets: [{provider: b}]\n");
    a_->script(
        R"({"status":400,"code":"content_filter","message":"filtered by the content management policy"})");
    const auto r = post(chat());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-sluice-route"), "lenient");
    EXPECT_EQ(r.header("x-sluice-attempts"), "2");
}

TEST_F(Routing, FallbackRoutesAreTriedWhenTheTargetsAreExhausted) {
    start(
        "  - model: m\n    targets: [{provider: a}]\n    fallbacks: [spare]\n"
        "    retries: {attempts: 2, backoff_base: 5ms, backoff_cap: 10ms}\n"
        "  - name: spare\n    targets: [{provider: b}]\n");
    a_->set_default(R"({"status":503})");
    const auto r = post(chat());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-sluice-attempts"), "3");
    EXPECT_EQ(r.header("x-sluice-route"), "spare");
    EXPECT_EQ(a_->request_count(), 2u);
    // A fallback-only route (no model) is not reachable by name, nor listed.
    EXPECT_EQ(post(chat(false, "spare")).status, 404);
    Client c(gw_->port());
    const auto models = json::parse(c.request("GET", "/v1/models").body);
    ASSERT_EQ(models["data"].size(), 1u) << models;
    EXPECT_EQ(models["data"][0]["id"], "m");
}

TEST_F(Routing, OpenAiRequestFallsBackToAnAnthropicTargetTranslated) {
    start(
        "  - model: m\n    strategy: fallback\n"
        "    targets: [{provider: a}, {provider: claude, model: claude-sonnet-4-5}]\n");
    a_->script(R"({"status":500})");
    const auto r = post(chat(true));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-sluice-provider"), "claude");
    const auto data = sse_data(r.body);
    ASSERT_FALSE(data.empty());
    EXPECT_EQ(data.back(), "[DONE]");
    EXPECT_EQ(json::parse(data.front())["object"], "chat.completion.chunk");
    ASSERT_EQ(b_->request_count(), 1u);
    EXPECT_EQ(b_->requests()[0].target, "/v1/messages");
}

TEST_F(Routing, NoAvailableTargetAnswers503WithRetryAfter) {
    start(
        "  - model: m\n    targets: [{provider: a}]\n    retries: {attempts: 1}\n"
        "    breaker: {consecutive_failures: 1, cooldown: 10s}\n");
    a_->script(R"({"status":500})");
    EXPECT_EQ(post(chat()).status, 500);
    const auto r = post(chat());
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "no_available_target");
    const int after = std::stoi(r.header("retry-after"));
    EXPECT_GE(after, 9);
    EXPECT_LE(after, 11);
    EXPECT_EQ(a_->request_count(), 1u);
}

TEST_F(Routing, FlappingTargetUnder200ConcurrentClientsAnswersEachOnce) {
    start(
        "  - model: m\n    targets: [{provider: a}, {provider: b}]\n"
        "    breaker: {enabled: false}\n    retries: {backoff_base: 1ms, backoff_cap: 5ms}\n");
    a_->set_cycle({R"({"status":500})", "{}", R"({"status":503})", R"({"delay_ms":20})"});
    constexpr int kClients = 200;
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    std::atomic<int> extra{0};
    for (int i = 0; i < kClients; ++i) {
        threads.emplace_back([&, i] {
            Client c(gw_->port());
            const auto r = c.post_json("/v1/chat/completions", chat(i % 2 == 0));
            ok += r.status == 200 ? 1 : 0;
            // Exactly one answer: nothing else follows on the connection.
            extra += c.read_until("HTTP/1.1", 50ms).empty() ? 0 : 1;
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    EXPECT_EQ(ok.load(), kClients);
    EXPECT_EQ(extra.load(), 0);
}

TEST_F(Routing, OneTargetDownThousandRequestsAllSucceedAndItGetsOnlyProbes) {
    start(
        "  - model: m\n    targets: [{provider: a}, {provider: b}]\n"
        "    breaker: {consecutive_failures: 5, cooldown: 250ms}\n");
    a_->set_default(R"({"status":500})");
    constexpr int kThreads = 4;
    constexpr int kPerThread = 250;
    std::atomic<int> ok{0};
    std::vector<std::thread> threads;
    const auto began = Clock::now();
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            Client c(gw_->port());
            for (int i = 0; i < kPerThread; ++i) {
                ok += c.post_json("/v1/chat/completions", chat()).status == 200 ? 1 : 0;
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    const long elapsed = ms_since(began);
    EXPECT_EQ(ok.load(), kThreads * kPerThread);
    // Five failures open the circuit (plus requests already in flight then); after that only
    // one probe per cooldown.
    const long probes = elapsed / 250 + 1;
    EXPECT_LE(static_cast<long>(a_->request_count()), 5 + kThreads + probes)
        << "elapsed " << elapsed << " ms";
}

std::size_t chat_requests(const MockUpstream& up) {
    std::size_t n = 0;
    for (const auto& r : up.requests()) {
        n += r.target == "/v1/chat/completions" ? 1 : 0;
    }
    return n;
}

TEST_F(Routing, ActiveHealthChecksTakeAFailingProviderOutAndBringItBack) {
    start("  - model: m\n    targets: [{provider: a}, {provider: b}]\n",
          "    health_check: {interval: 50ms, timeout: 500ms, unhealthy_after: 2, healthy_after: 1}\n");
    a_->set_default(R"({"status":503})");
    std::this_thread::sleep_for(400ms);  // several failed checks
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(post(chat()).status, 200);
    }
    EXPECT_EQ(chat_requests(*a_), 0u);  // only health checks reached it
    EXPECT_GT(a_->request_count(), 2u);
    EXPECT_EQ(a_->requests().front().target, "/v1/models");
    a_->set_default("");
    std::this_thread::sleep_for(300ms);
    for (int i = 0; i < 40; ++i) {
        ASSERT_EQ(post(chat()).status, 200);
    }
    EXPECT_GT(chat_requests(*a_), 5u);
}

TEST_F(Routing, PerTargetBreakerSettingsOverrideTheRoutes) {
    start(
        "  - model: m\n    targets: [{provider: a, breaker: {consecutive_failures: 1}}, {provider: b}]\n"
        "    breaker: {consecutive_failures: 100, cooldown: 30s}\n");
    a_->set_default(R"({"status":500})");
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(post(chat()).status, 200);
    }
    EXPECT_EQ(a_->request_count(), 1u);
}

TEST_F(Routing, E4_ConnectionClosedBeforeAnsweringIsRetriedOnlyWhenConfigured) {
    // The request reached the provider, which may have started (and billed) work: by default
    // that is the answer (502), not a retry.
    start("  - model: m\n    strategy: fallback\n    targets: [{provider: a}, {provider: b}]\n");
    a_->script(R"({"hang_up":true})");
    EXPECT_EQ(post(chat()).status, 502);
    EXPECT_EQ(b_->request_count(), 0u);
    start(
        "  - model: m\n    strategy: fallback\n    targets: [{provider: a}, {provider: b}]\n"
        "    retries: {on: [connect_error, timeout, reset, 500]}\n");
    a_->script(R"({"hang_up":true})");
    const auto r = post(chat());
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("x-sluice-provider"), "b");
}

TEST_F(Routing, RefusedAnswerGoesToTheContentPolicyRoute) {
    start(
        "  - model: m\n    targets: [{provider: a}]\n    fallback_on: {content_policy: [lenient]}\n"
        "  - name: lenient\n    targets: [{provider: b}]\n");
    const std::string refusal =
        R"({"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":""},"finish_reason":"content_filter"}],"usage":{"prompt_tokens":3,"completion_tokens":0,"total_tokens":3}})";
    a_->enqueue_raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                    std::to_string(refusal.size()) + "\r\n\r\n" + refusal);
    const auto r = post(chat());
    ASSERT_EQ(r.status, 200);
    EXPECT_EQ(r.header("x-sluice-route"), "lenient");
    EXPECT_EQ(json::parse(r.body)["choices"][0]["finish_reason"], "stop");
}

TEST_F(Routing, MessagesRequestFallsBackFromAnthropicToAnOpenAiTarget) {
    start(
        "  - model: m\n    strategy: fallback\n"
        "    targets: [{provider: claude, model: claude-sonnet-4-5}, {provider: a, model: mock-gpt-4o}]\n");
    b_->script(R"({"status":529,"message":"overloaded"})");  // the Anthropic upstream (on b)
    Client c(gw_->port());
    const auto r = c.post_json(
        "/v1/messages",
        R"({"model":"m","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"hello"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("x-sluice-provider"), "a");
    EXPECT_NE(r.body.find("event: message_start"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("event: message_stop"), std::string::npos) << r.body;
    EXPECT_EQ(a_->requests().at(0).target, "/v1/chat/completions");
}

TEST_F(Routing, ClientLeavingDuringARetryWaitEndsTheRequestAtOnce) {
    start("  - model: m\n    targets: [{provider: a}]\n    retries: {retry_after_cap: 10s}\n");
    a_->script(R"({"status":429,"retry_after":"5"})");
    {
        Client c(gw_->port());
        const std::string body = chat();
        c.send_raw(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: " +
            std::to_string(body.size()) + "\r\n\r\n" + body);
        std::this_thread::sleep_for(300ms);  // the 429 came back; sluice waits out Retry-After
        EXPECT_EQ(gw_->server().active_requests.load(), 1);
    }  // the client hangs up
    const auto left = Clock::now();
    while (gw_->server().active_requests.load() > 0 && ms_since(left) < 4000) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_LT(ms_since(left), 1000);  // not the 5 s the provider asked for
    std::this_thread::sleep_for(200ms);
    EXPECT_EQ(a_->request_count(), 1u);
}

}  // namespace
}  // namespace sluice::test
