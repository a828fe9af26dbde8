#include <gtest/gtest.h>

#include "api/api_request.hpp"
#include "provider_errors.hpp"
#include "providers/azure_provider.hpp"
#include "providers/openai_provider.hpp"
#include "sse/sse.hpp"

namespace sluice {
namespace {

using test::body_err;
using test::TestHeaders;

ApiRequest request(const std::string& body) {
    ApiRequest r;
    auto err = parse_api_request(Endpoint::chat_completions, body, r);
    EXPECT_FALSE(err) << (err ? err->message : "");
    return r;
}

ProviderConfig config() {
    ProviderConfig pc;
    pc.name = "up";
    pc.kind = "openai";
    pc.base_url = "https://api.example.com/v1";
    pc.api_key = "sk-provider-secret-123456";
    pc.api_key_set = true;
    return pc;
}

TEST(OpenAiRewrite, KeepsBodyWhenNothingChanges) {
    const std::string body = R"({"model":"gpt-4o","messages":[],"x_unknown":{"a":[1,2]}})";
    EXPECT_EQ(rewrite_openai_body(request(body), "gpt-4o"), body);
}

TEST(OpenAiRewrite, ReplacesTheModel) {
    EXPECT_EQ(rewrite_openai_body(request(R"({"model":"alias","n":1})"), "real-model"),
              R"({"model":"real-model","n":1})");
}

TEST(OpenAiRewrite, AddsIncludeUsageToStreams) {
    EXPECT_EQ(rewrite_openai_body(request(R"({"model":"m","stream":true})"), "m"),
              R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})");
    EXPECT_EQ(
        rewrite_openai_body(
            request(R"({"model":"m","stream":true,"stream_options":{"include_usage":false,"x":1}})"), "m"),
        R"({"model":"m","stream":true,"stream_options":{"x":1,"include_usage":true}})");
    const std::string asked = R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})";
    EXPECT_EQ(rewrite_openai_body(request(asked), "m"), asked);
}

TEST(OpenAiProvider, BuildsTheUpstreamRequest) {
    OpenAiProvider p(config());
    UpstreamRequest out;
    ASSERT_FALSE(p.build_request(request(R"({"model":"m"})"), "m", out));
    EXPECT_EQ(out.target, "/v1/chat/completions");
    ASSERT_FALSE(out.headers.empty());
    EXPECT_EQ(out.headers[0].first, "Authorization");
    EXPECT_EQ(out.headers[0].second, "Bearer sk-provider-secret-123456");
}

TEST(OpenAiProvider, EmptyKeyVariableDisablesTheProvider) {
    auto pc = config();
    pc.api_key.clear();
    EXPECT_FALSE(OpenAiProvider(pc).enabled());
    pc.api_key_set = false;
    EXPECT_TRUE(OpenAiProvider(pc).enabled());
}

std::string relay(bool wants_usage, const std::string& upstream, Usage* usage = nullptr) {
    OpenAiStreamRelay r(wants_usage);
    sse::Decoder d;
    std::vector<sse::Event> events;
    d.feed(upstream, events);
    std::string out;
    for (const auto& e : events) {
        r.on_event(e, out);
    }
    if (usage != nullptr) {
        *usage = r.usage();
    }
    return out;
}

const std::string kStream =
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"usage\":null}\n\n"
    "data: "
    "{\"id\":\"c\",\"usage\":null,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: "
    "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}"
    "}\n\n"
    "data: [DONE]\n\n";

TEST(OpenAiStreamRelay, F6_HidesInjectedUsageButCountsIt) {
    Usage u;
    const auto out = relay(false, kStream, &u);
    EXPECT_EQ(out,
              "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n"
              "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
              "data: [DONE]\n\n");
    EXPECT_EQ(u.prompt_tokens, 9);
    EXPECT_EQ(u.completion_tokens, 2);
}

TEST(OpenAiStreamRelay, PassesUsageWhenTheClientAskedForIt) {
    Usage u;
    EXPECT_EQ(relay(true, kStream, &u), kStream);
    EXPECT_EQ(u.total_tokens, 11);
}

TEST(OpenAiStreamRelay, F1_SameOutputAtEverySplit) {
    const std::string expected = relay(false, kStream);
    for (std::size_t split = 1; split < kStream.size(); ++split) {
        OpenAiStreamRelay r(false);
        sse::Decoder d;
        std::vector<sse::Event> events;
        d.feed(std::string_view(kStream).substr(0, split), events);
        d.feed(std::string_view(kStream).substr(split), events);
        std::string out;
        for (const auto& e : events) {
            r.on_event(e, out);
        }
        EXPECT_EQ(out, expected) << split;
        EXPECT_EQ(r.usage().completion_tokens, 2) << split;
    }
}

TEST(OpenAiStreamRelay, ToolCallDeltasPassIntact) {
    const std::string s =
        "data: "
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n"
        "data: "
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{"
        "\\\"a\\\":\"}}]}}]}\n\n"
        "data: [DONE]\n\n";
    EXPECT_EQ(relay(true, s), s);
    EXPECT_EQ(relay(false, s), s);
}

TEST(OpenAiProvider, E7_ErrorsKeepStatusAndLoseSecrets) {
    OpenAiProvider p(config());
    auto e = body_err(
        p, 429,
        R"({"error":{"message":"Rate limit for key sk-provider-secret-123456 reached","type":"requests","code":"rate_limit_exceeded"}})");
    EXPECT_EQ(e.status, 429);
    EXPECT_EQ(e.code, "rate_limit_exceeded");
    EXPECT_EQ(e.message.find("sk-provider"), std::string::npos) << e.message;
    e = body_err(p, 500, "<html>oops</html>");
    EXPECT_EQ(e.status, 500);
    EXPECT_EQ(e.type, "server_error");
    e = body_err(p, 401, R"({"error":{"message":"Incorrect API key provided: sk-abc***xyz1234"}})");
    EXPECT_EQ(e.status, 502);
    EXPECT_EQ(e.code, "upstream_auth_error");
    EXPECT_EQ(e.message.find("sk-abc"), std::string::npos) << e.message;
    const auto json = e.to_json();
    EXPECT_EQ(json.find("sk-"), std::string::npos);
}

TEST(AzureProvider, AddressesTheDeploymentAndSendsApiKey) {
    auto pc = config();
    pc.kind = "azure";
    pc.base_url = "https://my-res.openai.azure.com";
    pc.api_version = "2024-10-21";
    AzureProvider p(pc);
    UpstreamRequest out;
    ASSERT_FALSE(p.build_request(request(R"({"model":"gpt-4o","stream":true})"), "prod gpt4o", out));
    EXPECT_EQ(out.target, "/openai/deployments/prod%20gpt4o/chat/completions?api-version=2024-10-21");
    ASSERT_FALSE(out.headers.empty());
    EXPECT_EQ(out.headers[0].first, "api-key");
    for (const auto& [k, v] : out.headers) {
        EXPECT_NE(k, "Authorization");
    }
    EXPECT_FALSE(p.models_request());
    pc.api_version = "v1";
    AzureProvider v1(pc);
    ASSERT_FALSE(v1.build_request(request(R"({"model":"gpt-4o"})"), "dep", out));
    EXPECT_EQ(out.target, "/openai/v1/chat/completions");
    EXPECT_NE(out.body.find("\"model\":\"dep\""), std::string::npos);
    EXPECT_EQ(v1.models_request()->target, "/openai/v1/models");
}

TEST(OpenAiProvider, ParsesModelLists) {
    OpenAiProvider p(config());
    const auto ids = p.parse_models(
        R"({"object":"list","data":[{"id":"a","object":"model","meta":{"x":"}"}},{"object":"model","id":"b"}]})");
    ASSERT_EQ(ids.size(), 2u);
    EXPECT_EQ(ids[0], "a");
    EXPECT_EQ(ids[1], "b");
}

TEST(OpenAiProvider, RetryAfterHeadersAreTheProvidersPause) {
    OpenAiProvider p(config());
    const std::string body = R"({"error":{"message":"slow down","code":"rate_limit_exceeded"}})";
    EXPECT_EQ(p.translate_error(429, TestHeaders{{"retry-after-ms", "1500"}, {"Retry-After", "9"}}, body, 0)
                  .retry_after->count(),
              1500);
    EXPECT_EQ(
        p.translate_error(429, TestHeaders{{"x-ms-retry-after-ms", "250"}}, body, 0).retry_after->count(),
        250);
    EXPECT_EQ(p.translate_error(429, TestHeaders{{"Retry-After", "7"}}, body, 0).retry_after->count(), 7000);
    EXPECT_FALSE(p.translate_error(429, NoHeaders(), body, 0).retry_after);
}

}  // namespace
}  // namespace sluice
