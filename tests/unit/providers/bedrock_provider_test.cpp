#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/api_request.hpp"
#include "provider_errors.hpp"
#include "providers/bedrock_provider.hpp"
#include "stream/client_encoders.hpp"

namespace sluice {
namespace {

using test::body_err;
using test::TestHeaders;

using Json = nlohmann::json;

/// The date the translators are given (the clock is a parameter, never read inside).
constexpr std::int64_t kCreated = 1767225600;

/// The translated answer; the translation must succeed.
Json converse_answer(const Json& resp, std::string_view model, Usage& u) {
    Json out;
    const auto err = converse_to_openai(resp, model, "bedrock", kCreated, out, u);
    EXPECT_FALSE(err.has_value()) << (err ? err->message : "");
    EXPECT_EQ(out.value("created", std::int64_t{0}), kCreated);
    return out;
}

TEST(BedrockRequest, ConverseShape) {
    Json out;
    ASSERT_FALSE(openai_to_converse(Json::parse(R"({"messages":[
        {"role":"system","content":"S"},
        {"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},
        {"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
        {"role":"tool","tool_call_id":"t1","content":"42"}],
        "tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}}}],
        "tool_choice":"required","max_tokens":10,"temperature":0.1,"top_p":0.9,"stop":"END"})"),
                                    out));
    EXPECT_EQ(out["system"], Json::parse(R"([{"text":"S"}])"));
    EXPECT_EQ(out["messages"][0]["content"][1],
              Json::parse(R"({"image":{"format":"png","source":{"bytes":"AAAA"}}})"));
    EXPECT_EQ(out["messages"][1]["content"][0],
              Json::parse(R"({"toolUse":{"toolUseId":"t1","name":"f","input":{"a":1}}})"));
    EXPECT_EQ(out["messages"][2]["content"][0],
              Json::parse(R"({"toolResult":{"toolUseId":"t1","content":[{"text":"42"}]}})"));
    EXPECT_EQ(out["inferenceConfig"],
              Json::parse(R"({"maxTokens":10,"temperature":0.1,"topP":0.9,"stopSequences":["END"]})"));
    EXPECT_EQ(out["toolConfig"]["tools"][0]["toolSpec"],
              Json::parse(R"({"name":"f","description":"d","inputSchema":{"json":{"type":"object"}}})"));
    EXPECT_EQ(out["toolConfig"]["toolChoice"], Json::parse(R"({"any":{}})"));
    EXPECT_TRUE(openai_to_converse(Json::parse(R"({"messages":[{"role":"user","content":[
        {"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]})"),
                                   out));
}

TEST(BedrockResponse, TextToolsReasoningAndUsage) {
    Usage u;
    const Json out = converse_answer(Json::parse(R"({"output":{"message":{"role":"assistant","content":[
        {"reasoningContent":{"reasoningText":{"text":"hm","signature":"s"}}},{"text":"ok"},
        {"toolUse":{"toolUseId":"t","name":"f","input":{"x":2}}}]}},
        "stopReason":"tool_use","usage":{"inputTokens":5,"outputTokens":3,"cacheReadInputTokens":4,"cacheWriteInputTokens":1}})"),
                                     "m", u);
    const Json& msg = out["choices"][0]["message"];
    EXPECT_EQ(msg["content"], "ok");
    EXPECT_EQ(msg["reasoning_content"], "hm");
    EXPECT_EQ(msg["tool_calls"][0]["function"]["arguments"], R"({"x":2})");
    EXPECT_EQ(out["choices"][0]["finish_reason"], "tool_calls");
    EXPECT_EQ(out["usage"]["prompt_tokens"], 10);
    EXPECT_EQ(out["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    EXPECT_EQ(u.completion_tokens, 3);
    EXPECT_EQ(
        converse_answer(Json{{"stopReason", "guardrail_intervened"}}, "m", u)["choices"][0]["finish_reason"],
        "content_filter");
}

TEST(BedrockStream, F1_SameOutputAtEverySplit) {
    auto ev = [](const std::string& type, const std::string& payload) {
        return aws::encode_message(
            {{":event-type", type}, {":content-type", "application/json"}, {":message-type", "event"}},
            payload);
    };
    const std::string bytes =
        ev("messageStart", R"({"role":"assistant"})") +
        ev("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"Hel"}})") +
        ev("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"lo"}})") +
        ev("contentBlockStop", R"({"contentBlockIndex":0})") +
        ev("contentBlockStart",
           R"({"contentBlockIndex":1,"start":{"toolUse":{"toolUseId":"t1","name":"f"}}})") +
        ev("contentBlockDelta", R"({"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\":"}}})") +
        ev("contentBlockDelta", R"({"contentBlockIndex":1,"delta":{"toolUse":{"input":"1}"}}})") +
        ev("messageStop", R"({"stopReason":"tool_use"})") +
        ev("metadata", R"({"usage":{"inputTokens":4,"outputTokens":6,"totalTokens":10}})");
    auto run = [&](std::size_t split) {
        BedrockStreamRelay relay(std::make_unique<OpenAiChunkEncoder>(true), "m", 1700000000);
        std::string out;
        EXPECT_TRUE(relay.on_bytes(std::string_view(bytes).substr(0, split), out));
        EXPECT_TRUE(relay.on_bytes(std::string_view(bytes).substr(split), out));
        EXPECT_TRUE(relay.finished());
        EXPECT_EQ(relay.usage().completion_tokens, 6);
        return out;
    };
    const std::string whole = run(0);
    for (const char* expected :
         {R"("content":"Hel")", R"("content":"lo")", R"("id":"t1")", R"("arguments":"1}")",
          R"("finish_reason":"tool_calls")", R"("completion_tokens":6)", "data: [DONE]"}) {
        EXPECT_NE(whole.find(expected), std::string::npos) << expected << "\n" << whole;
    }
    for (std::size_t split = 1; split < bytes.size(); ++split) {
        ASSERT_EQ(run(split), whole) << split;
    }
}

TEST(BedrockProvider, SignsWithSessionTokenAndEncodedModelId) {
    ProviderConfig pc;
    pc.name = "br";
    pc.kind = "bedrock";
    pc.region = "eu-central-1";
    pc.base_url = "https://bedrock-runtime.eu-central-1.amazonaws.com";
    BedrockProvider p(pc, aws::Credentials{"AKID", "SECRET", "SESSIONTOKEN"});
    ApiRequest req;
    ASSERT_FALSE(parse_api_request(Endpoint::chat_completions,
                                   R"({"model":"x","messages":[{"role":"user","content":"hi"}]})", req));
    UpstreamRequest out;
    ASSERT_FALSE(p.build_signed(req, "meta.llama3-70b-instruct-v1:0", "20250101T000000Z", out));
    EXPECT_EQ(out.target, "/model/meta.llama3-70b-instruct-v1%3A0/converse");
    std::string auth;
    std::string token;
    for (const auto& [k, v] : out.headers) {
        if (k == "Authorization")
            auth = v;
        if (k == "x-amz-security-token")
            token = v;
    }
    EXPECT_EQ(token, "SESSIONTOKEN");
    EXPECT_EQ(auth.rfind("AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-central-1/bedrock/aws4_request, "
                         "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=",
                         0),
              0u)
        << auth;
    EXPECT_EQ(auth.find("SECRET"), std::string::npos);
    EXPECT_FALSE(BedrockProvider(pc, aws::Credentials{}).enabled());
}

TEST(BedrockErrors, TheErrorTypeHeaderClassifiesTheError) {
    ProviderConfig pc;
    pc.name = "br";
    pc.kind = "bedrock";
    pc.region = "us-east-1";
    pc.base_url = "https://bedrock-runtime.us-east-1.amazonaws.com";
    BedrockProvider p(pc, aws::Credentials{"AKIDEXAMPLE1234567", "SECRETEXAMPLE", ""});
    auto e = p.translate_error(
                  429,
                  TestHeaders{{"x-amzn-ErrorType",
                               "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"}},
                  R"({"message":"Too many requests, please wait before trying again."})", 0)
                 .error;
    EXPECT_EQ(e.status, 429);
    EXPECT_EQ(e.code, "rate_limit_exceeded");
    EXPECT_EQ(e.type, "rate_limit_error");
    e = p.translate_error(400, TestHeaders{{"x-amzn-ErrorType", "ValidationException"}},
                          R"({"message":"Input is too long for requested model."})", 0)
            .error;
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_EQ(e.code, "validation_error");
    e = p.translate_error(503, TestHeaders{{"x-amzn-ErrorType", "ServiceUnavailableException"}},
                          R"({"message":"Bedrock is unable to process your request."})", 0)
            .error;
    EXPECT_EQ(e.type, "server_error");
    e = p.translate_error(403, TestHeaders{{"x-amzn-ErrorType", "AccessDeniedException"}},
                          R"({"message":"key AKIDEXAMPLE1234567 denied"})", 0)
            .error;
    EXPECT_EQ(e.code, "upstream_auth_error");
    EXPECT_EQ(e.message.find("AKIDEXAMPLE1234567"), std::string::npos) << e.message;
}

}  // namespace
}  // namespace sluice
