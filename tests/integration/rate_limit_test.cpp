// A provider's 429 is the client's 429: its Retry-After pauses the (provider, upstream model)
// pair only, never opens a circuit, and a request that finds only paused targets gets a 429
// with Retry-After so SDKs raise RateLimitError and back off.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_upstream.hpp"

namespace sluice::test {
namespace {

using json = nlohmann::json;

std::string provider(const std::string& name, const MockUpstream& up) {
    std::string y = "  ";  // (appends: g++ 12 warns falsely on "literal" + string, -Wrestrict)
    y += name;
    y += ":\n    kind: openai\n    base_url: \"";
    y += up.base_url();
    y += "\"\n    api_key: \"sk-";
    y += name;
    y += "-key\"\n";
    return y;
}

std::string chat(const std::string& model, bool stream) {
    return R"({"model":")" + model + R"(","messages":[{"role":"user","content":"hi"}],"stream":)" +
           (stream ? "true" : "false") + "}";
}

std::string messages(const std::string& model, bool stream) {
    return R"({"model":")" + model +
           R"(","max_tokens":16,"messages":[{"role":"user","content":"hi"}],"stream":)" +
           (stream ? "true" : "false") + "}";
}

TEST(RateLimit, RetryAfterPausesOnlyTheModelThatGotItAndLaterRequestsGet429) {
    MockUpstream up;
    // One target, default retries (429 is retried) and a breaker that one failure would open.
    Gateway gw("providers:\n" + provider("up", up) +
               "routes:\n  - model: \"*\"\n    targets: [{provider: up}]\n"
               "    breaker: {consecutive_failures: 1}\n");
    Client c(gw.port());
    up.script(R"({"status":429,"retry_after":"7","message":"rate limited"})");
    auto r = c.post_json("/v1/chat/completions", chat("model-a", false));
    ASSERT_EQ(r.status, 429) << r.body;  // the 429's own client gets the provider's 429
    EXPECT_EQ(r.header("retry-after"), "7");
    EXPECT_EQ(json::parse(r.body)["error"]["type"], "rate_limit_error");
    EXPECT_EQ(up.request_count(), 1u);  // a 7 s pause is over retry_after_cap: not waited for

    // Model B through the same glob route and target: served at once (no pause, no open circuit).
    r = c.post_json("/v1/chat/completions", chat("model-b", false));
    EXPECT_EQ(r.status, 200) << r.body;
    r = c.post_json("/v1/chat/completions", chat("model-b", true));
    EXPECT_EQ(r.status, 200) << r.body;
    const auto after_b = up.request_count();

    // Model A again within 7 s, streamed and not, on both front doors: 429 without reaching the
    // provider, Retry-After the remaining pause.
    for (const bool stream : {false, true}) {
        r = c.post_json("/v1/chat/completions", chat("model-a", stream));
        EXPECT_EQ(r.status, 429) << r.body;
        const json e = json::parse(r.body, nullptr, false);
        EXPECT_EQ(e["error"]["type"], "rate_limit_error") << r.body;
        EXPECT_EQ(e["error"]["code"], "rate_limit_exceeded") << r.body;
        const int ra = std::stoi(r.header("retry-after").empty() ? "0" : r.header("retry-after"));
        EXPECT_GE(ra, 1);
        EXPECT_LE(ra, 7);

        r = c.post_json("/v1/messages", messages("model-a", stream));
        EXPECT_EQ(r.status, 429) << r.body;
        const json m = json::parse(r.body, nullptr, false);
        EXPECT_EQ(m["type"], "error") << r.body;
        EXPECT_EQ(m["error"]["type"], "rate_limit_error") << r.body;
        EXPECT_FALSE(r.header("retry-after").empty());
    }
    EXPECT_EQ(up.request_count(), after_b);
}

TEST(RateLimit, TheRequestThatMetThe429IsAnsweredByTheOtherTarget) {
    MockUpstream up;
    Gateway gw("providers:\n" + provider("one", up) + provider("two", up) +
               "routes:\n  - model: \"*\"\n    targets: [{provider: one}, {provider: two}]\n");
    Client c(gw.port());
    for (int i = 0; i < 4; ++i) {
        up.script(R"({"status":429,"retry_after":"30"})");  // whichever target comes first
        const auto r =
            c.post_json("/v1/chat/completions", chat(std::string("m") += std::to_string(i), false));
        EXPECT_EQ(r.status, 200) << r.body;
        EXPECT_EQ(r.header("x-sluice-attempts"), "2");
    }
}

TEST(RateLimit, AnAccountOutOfQuotaIsPassedThroughNotRetriedNotPaused) {
    MockUpstream up;
    Gateway gw("providers:\n" + provider("one", up) + provider("two", up) +
               "routes:\n  - model: \"*\"\n    targets: [{provider: one}, {provider: two}]\n");
    Client c(gw.port());
    up.script(
        R"({"status":429,"retry_after":"30","error_body":"{\"error\":{\"message\":\"You exceeded your current quota.\",\"type\":\"insufficient_quota\",\"param\":null,\"code\":\"insufficient_quota\"}}"})");
    auto r = c.post_json("/v1/chat/completions", chat("m", false));
    EXPECT_EQ(r.status, 429) << r.body;
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "insufficient_quota") << r.body;
    EXPECT_EQ(up.request_count(), 1u);  // not retried on the other target
    // Not a pause: the next request for the same model goes to the provider.
    r = c.post_json("/v1/chat/completions", chat("m", false));
    EXPECT_EQ(r.status, 200) << r.body;
}

}  // namespace
}  // namespace sluice::test
