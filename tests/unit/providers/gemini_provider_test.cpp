#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "provider_errors.hpp"
#include "providers/gemini_provider.hpp"
#include "sse/sse.hpp"
#include "stream/client_encoders.hpp"

namespace sluice {
namespace {

using test::body_err;
using test::TestHeaders;

using Json = nlohmann::json;

/// The date the translators are given (the clock is a parameter, never read inside).
constexpr std::int64_t kCreated = 1767225600;

/// The translated answer; the translation must succeed.
Json gemini_answer(const Json& resp, std::string_view model, Usage& u) {
    Json out;
    const auto err = gemini_to_openai(resp, model, "gemini", kCreated, out, u);
    EXPECT_FALSE(err.has_value()) << (err ? err->message : "");
    EXPECT_EQ(out.value("created", std::int64_t{0}), kCreated);
    return out;
}

TEST(GeminiRequest, ContentsToolsSignaturesAndConfig) {
    Json out;
    ASSERT_FALSE(openai_to_gemini(Json::parse(R"({
      "messages":[
        {"role":"system","content":"Be brief."},
        {"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
        {"role":"assistant","content":null,"tool_calls":[{"id":"call_0","type":"function",
          "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"},
          "extra_content":{"google":{"thought_signature":"SIG=="}}}]},
        {"role":"tool","tool_call_id":"call_0","content":"{\"temp\":18}"},
        {"role":"tool","tool_call_id":"call_x","content":"plain"}],
      "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","additionalProperties":false,
        "properties":{"city":{"type":"string"}}}}}],
      "tool_choice":{"type":"function","function":{"name":"get_weather"}},
      "max_tokens":100,"temperature":0.2,"stop":["X"],"n":1,
      "response_format":{"type":"json_schema","json_schema":{"schema":{"type":"object"}}},
      "reasoning_effort":"low"})"),
                                  out));
    EXPECT_EQ(out["systemInstruction"], Json::parse(R"({"parts":[{"text":"Be brief."}]})"));
    EXPECT_EQ(out["contents"][0]["parts"][1]["inlineData"],
              Json::parse(R"({"mimeType":"image/png","data":"AAAA"})"));
    const Json& call = out["contents"][1]["parts"][0];
    EXPECT_EQ(out["contents"][1]["role"], "model");
    EXPECT_EQ(call["functionCall"], Json::parse(R"({"name":"get_weather","args":{"city":"Paris"}})"));
    EXPECT_EQ(call["thoughtSignature"], "SIG==");  // round trip
    const Json& responses = out["contents"][2]["parts"];
    EXPECT_EQ(responses[0]["functionResponse"],
              Json::parse(R"({"name":"get_weather","response":{"temp":18}})"));
    EXPECT_EQ(responses[1]["functionResponse"]["response"], Json::parse(R"({"content":"plain"})"));
    EXPECT_FALSE(out["tools"][0]["functionDeclarations"][0]["parameters"].contains("additionalProperties"));
    EXPECT_EQ(out["toolConfig"]["functionCallingConfig"],
              Json::parse(R"({"mode":"ANY","allowedFunctionNames":["get_weather"]})"));
    const Json& gen = out["generationConfig"];
    EXPECT_EQ(gen["maxOutputTokens"], 100);
    EXPECT_EQ(gen["stopSequences"], Json::array({"X"}));
    EXPECT_EQ(gen["candidateCount"], 1);
    EXPECT_EQ(gen["responseMimeType"], "application/json");
    EXPECT_EQ(gen["thinkingConfig"]["thinkingBudget"], 1024);
}

TEST(GeminiResponse, TextThoughtsCallsSafetyAndUsage) {
    Usage u;
    Json out = gemini_answer(Json::parse(R"({"candidates":[{"content":{"role":"model","parts":[
        {"text":"hmm","thought":true},{"text":"Hello"},
        {"functionCall":{"name":"f","args":{"a":1}},"thoughtSignature":"S1"}]},"finishReason":"STOP"}],
        "usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":4,"thoughtsTokenCount":6,"cachedContentTokenCount":3}})"),
                             "gemini-x", u);
    const Json& msg = out["choices"][0]["message"];
    EXPECT_EQ(msg["content"], "Hello");
    EXPECT_EQ(msg["reasoning_content"], "hmm");
    EXPECT_EQ(msg["tool_calls"][0]["extra_content"]["google"]["thought_signature"], "S1");
    EXPECT_EQ(out["choices"][0]["finish_reason"], "tool_calls");
    EXPECT_EQ(out["usage"]["completion_tokens"], 10);
    EXPECT_EQ(out["usage"]["prompt_tokens_details"]["cached_tokens"], 3);
    EXPECT_EQ(out["usage"]["completion_tokens_details"]["reasoning_tokens"], 6);
    out = gemini_answer(Json::parse(R"({"promptFeedback":{"blockReason":"SAFETY"}})"), "g", u);
    EXPECT_EQ(out["choices"][0]["finish_reason"], "content_filter");
    out = gemini_answer(
        Json::parse(R"({"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"MAX_TOKENS"}]})"),
        "g", u);
    EXPECT_EQ(out["choices"][0]["finish_reason"], "length");
}

TEST(GeminiStream, F1_SameOutputAtEverySplitAndClosedOnEnd) {
    const std::string text =
        "data: "
        "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hel\"}]}}],\"responseId\":\"r1\"}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"lo \\u00e9\"}]}}]}\r\n\r\n"
        "data: "
        "{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{\"q\":1}},"
        "\"thoughtSignature\":\"S\"}]},"
        "\"finishReason\":\"STOP\"}],\"usageMetadata\":{\"promptTokenCount\":3,\"candidatesTokenCount\":2}}"
        "\r\n\r\n";
    auto run = [&](std::size_t split) {
        GeminiStreamRelay relay(std::make_unique<OpenAiChunkEncoder>(true), "gemini-x", 1700000000);
        sse::Decoder d;
        std::string out;
        auto on = [&](const sse::Event& e) { relay.on_event(e, out); };
        d.feed(std::string_view(text).substr(0, split), on);
        d.feed(std::string_view(text).substr(split), on);
        EXPECT_FALSE(relay.finished());
        relay.on_end(out);
        EXPECT_TRUE(relay.finished());
        EXPECT_EQ(relay.usage().total_tokens, 5);
        return out;
    };
    const std::string whole = run(0);
    EXPECT_NE(whole.find(R"("content":"Hel")"), std::string::npos);
    EXPECT_NE(whole.find(R"("thought_signature":"S")"), std::string::npos);
    EXPECT_NE(whole.find(R"("finish_reason":"tool_calls")"), std::string::npos);
    EXPECT_NE(whole.find(R"("choices":[],)"), std::string::npos);  // the usage chunk
    EXPECT_EQ(whole.substr(whole.size() - 14), "data: [DONE]\n\n");
    for (std::size_t split = 1; split < text.size(); ++split) {
        ASSERT_EQ(run(split), whole) << split;
    }
}

TEST(GeminiStream, ErrorInsideTheStreamBecomesAnErrorEvent) {
    GeminiStreamRelay relay(std::make_unique<OpenAiChunkEncoder>(false), "gemini-x", 1700000000);
    sse::Decoder d;
    std::string out;
    bool stopped = false;
    d.feed(
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\r\n\r\n"
        "data: {\"error\":{\"code\":503,\"message\":\"The model is "
        "overloaded.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n",
        [&](const sse::Event& e) { stopped = stopped || !relay.on_event(e, out); });
    EXPECT_NE(out.find(R"("content":"Hi")"), std::string::npos);
    ASSERT_TRUE(stopped);  // the forwarder ends the client's stream with the relay's error
    EXPECT_EQ(
        relay.error().to_json(),
        R"({"error":{"message":"The model is overloaded.","type":"server_error","param":null,"code":"UNAVAILABLE"}})");
    EXPECT_EQ(relay.error().status, 503);
    EXPECT_EQ(out.find("[DONE]"), std::string::npos);
}

TEST(GeminiErrors, KeepStatusWithGoogleStatusAsCode) {
    ProviderConfig pc;
    pc.name = "g";
    pc.kind = "gemini";
    pc.base_url = "https://generativelanguage.googleapis.com";
    pc.api_key = "AIzaSyFAKE-key-123456";
    GeminiProvider p(pc);
    auto e = body_err(
        p, 429, R"({"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}})");
    EXPECT_EQ(e.status, 429);
    EXPECT_EQ(e.code, "resource_exhausted");
    EXPECT_EQ(e.type, "rate_limit_error");
    e = body_err(
        p, 400,
        R"({"error":{"code":400,"message":"API key AIzaSyFAKE-key-123456 not valid","status":"INVALID_ARGUMENT"}})");
    EXPECT_EQ(e.message.find("AIza"), std::string::npos);
}

TEST(GeminiErrors, RetryInfoInTheBodyIsThePauseWhenNoHeaderSaysOtherwise) {
    ProviderConfig pc;
    pc.name = "g";
    pc.kind = "gemini";
    pc.base_url = "https://generativelanguage.googleapis.com";
    pc.api_key = "k";
    GeminiProvider p(pc);
    const std::string body =
        R"({"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED","details":[)"
        R"({"@type":"type.googleapis.com/google.rpc.QuotaFailure"},)"
        R"({"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"33.5s"}]}})";
    auto pe = p.translate_error(429, NoHeaders(), body, 0);
    ASSERT_TRUE(pe.retry_after);
    EXPECT_EQ(pe.retry_after->count(), 33500);
    pe = p.translate_error(429, TestHeaders{{"Retry-After", "2"}}, body, 0);
    ASSERT_TRUE(pe.retry_after);
    EXPECT_EQ(pe.retry_after->count(), 2000) << "a header wins over the body's hint";
    for (const char* bad :
         {"\"s\"", "\"-1s\"", "\"5\"", "\"1.s\"", "7", "\"99999999999s\"", "\"99999999999999999999999s\""}) {
        const std::string b = std::string(R"({"error":{"status":"RESOURCE_EXHAUSTED","details":[)") +
                              R"({"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":)" + bad +
                              "}]}}";
        EXPECT_FALSE(p.translate_error(429, NoHeaders(), b, 0).retry_after) << bad;
    }
}

}  // namespace
}  // namespace sluice
