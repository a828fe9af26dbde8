// Each provider reads its own non-stream answers: the usage it bills, whether the model refused
// under its content policy (what a route's on_content_policy fallback acts on), and the date it
// is given (translators take the clock as a parameter).

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/api_request.hpp"
#include "providers/anthropic_provider.hpp"
#include "providers/azure_provider.hpp"
#include "providers/bedrock_provider.hpp"
#include "providers/gemini_provider.hpp"
#include "providers/mock_provider.hpp"
#include "providers/openai_provider.hpp"

namespace sluice {
namespace {

constexpr std::int64_t kNow = 1767225600;

ApiRequest request(Endpoint e, const std::string& body) {
    ApiRequest r;
    auto err = parse_api_request(e, body, r);
    EXPECT_FALSE(err) << (err ? err->message : "");
    return r;
}

ApiRequest chat() {
    return request(Endpoint::chat_completions,
                   R"({"model":"m","messages":[{"role":"user","content":"hi"}]})");
}

ProviderConfig config(std::string kind) {
    ProviderConfig pc;
    pc.name = std::string("answering");
    pc.kind = std::move(kind);
    pc.base_url = "https://api.example.com";
    pc.api_key = "secret-key-123456";
    pc.api_key_set = true;
    pc.region = "us-east-1";
    return pc;
}

/// The provider's reading of `body` (the translation must succeed); `translated` gets the body
/// as the client would.
Answer read(const Provider& p, const ApiRequest& req, std::string body, std::string* translated = nullptr) {
    Answer a;
    a.refused = true;  // reset by every reading
    auto err = p.translate_response(req, body, kNow, a);
    EXPECT_FALSE(err) << (err ? err->message : "");
    if (translated != nullptr) {
        *translated = body;
    }
    return a;
}

constexpr const char* kOpenAiRefused =
    R"({"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":)"
    R"({"role":"assistant","content":""},"finish_reason":"content_filter"}],)"
    R"("usage":{"prompt_tokens":3,"completion_tokens":0,"total_tokens":3}})";
constexpr const char* kOpenAiAnswered =
    R"({"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":)"
    R"({"role":"assistant","content":"about content_filter"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}})";

TEST(ProviderAnswer, OpenAiCompatibleKindsReadFinishReasonContentFilter) {
    const OpenAiProvider openai(config("openai"));
    ProviderConfig az = config("azure");
    az.api_version = "v1";
    const AzureProvider azure(az);
    const MockProvider mock(config("mock"));
    for (const Provider* p : std::initializer_list<const Provider*>{&openai, &azure, &mock}) {
        SCOPED_TRACE(p->kind());
        const Answer refused = read(*p, chat(), kOpenAiRefused);
        EXPECT_TRUE(refused.refused);
        EXPECT_EQ(refused.usage.prompt_tokens, 3);
        // The word in the text is not a finish reason.
        const Answer answered = read(*p, chat(), kOpenAiAnswered);
        EXPECT_FALSE(answered.refused);
        EXPECT_EQ(answered.usage.completion_tokens, 4);
    }
}

TEST(ProviderAnswer, AnthropicReadsStopReasonRefusalTranslatedAndPassedThrough) {
    const AnthropicProvider p(config("anthropic"));
    const std::string refused =
        R"({"id":"msg_1","type":"message","role":"assistant","model":"claude","content":[],)"
        R"("stop_reason":"refusal","usage":{"input_tokens":5,"output_tokens":0}})";
    const std::string answered =
        R"({"id":"msg_1","type":"message","role":"assistant","model":"claude","content":)"
        R"([{"type":"text","text":"refusal"}],"stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":1}})";
    std::string out;
    const Answer a = read(p, chat(), refused, &out);
    EXPECT_TRUE(a.refused);
    EXPECT_EQ(a.usage.prompt_tokens, 5);
    EXPECT_EQ(nlohmann::json::parse(out)["created"], kNow);
    EXPECT_FALSE(read(p, chat(), answered).refused);

    const ApiRequest messages = request(
        Endpoint::messages, R"({"model":"m","max_tokens":10,"messages":[{"role":"user","content":"hi"}]})");
    EXPECT_TRUE(read(p, messages, refused).refused);
    EXPECT_FALSE(read(p, messages, answered).refused);
}

TEST(ProviderAnswer, GeminiReadsSafetyFinishReasons) {
    const GeminiProvider p(config("gemini"));
    for (const char* reason : {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST"}) {
        SCOPED_TRACE(reason);
        const std::string body = std::string(R"({"candidates":[{"content":{"role":"model","parts":[]},)") +
                                 R"("finishReason":")" + reason + R"("}]})";
        EXPECT_TRUE(read(p, chat(), body).refused);
    }
    EXPECT_TRUE(read(p, chat(), R"({"promptFeedback":{"blockReason":"SAFETY"}})").refused);
    std::string out;
    EXPECT_FALSE(
        read(
            p, chat(),
            R"({"candidates":[{"content":{"role":"model","parts":[{"text":"SAFETY"}]},"finishReason":"STOP"}]})",
            &out)
            .refused);
    EXPECT_EQ(nlohmann::json::parse(out)["created"], kNow);
}

TEST(ProviderAnswer, BedrockReadsContentFilteredAndGuardrailStops) {
    const BedrockProvider p(config("bedrock"), aws::Credentials{"AKID", "SECRET", ""});
    for (const char* reason : {"content_filtered", "guardrail_intervened"}) {
        SCOPED_TRACE(reason);
        const std::string body =
            std::string(R"({"output":{"message":{"role":"assistant","content":[]}},"stopReason":")") +
            reason + R"(","usage":{"inputTokens":2,"outputTokens":0,"totalTokens":2}})";
        const Answer a = read(p, chat(), body);
        EXPECT_TRUE(a.refused);
        EXPECT_EQ(a.usage.prompt_tokens, 2);
    }
    std::string out;
    EXPECT_FALSE(
        read(
            p, chat(),
            R"({"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},"stopReason":"end_turn"})",
            &out)
            .refused);
    EXPECT_EQ(nlohmann::json::parse(out)["created"], kNow);
}

}  // namespace
}  // namespace sluice
