// OpenAI-format clients against a Bedrock upstream: SigV4-signed Converse, binary event streams.
#include <cstdlib>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_bedrock.hpp"
#include "mock_upstream.hpp"

namespace sluice::test {
namespace {

using nlohmann::json;

class BedrockUpstream : public ::testing::Test {
protected:
    void start(const char* secret) {
        setenv("AWS_ACCESS_KEY_ID", kMockAwsAccessKey, 1);
        setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
        unsetenv("AWS_SESSION_TOKEN");
        up_ = std::make_unique<MockUpstream>();
        gw_ = std::make_unique<Gateway>(
            "providers:\n  br:\n    kind: bedrock\n    region: us-west-2\n    base_url: \"http://127.0.0.1:" +
            std::to_string(up_->port()) +
            "\"\nroutes:\n  - model: \"claude\"\n"
            "    targets: [{provider: br, model: \"anthropic.claude-3-5-haiku-20241022-v1:0\"}]\n");
    }
    void SetUp() override { start(kMockAwsSecret); }
    void TearDown() override {
        unsetenv("AWS_ACCESS_KEY_ID");
        unsetenv("AWS_SECRET_ACCESS_KEY");
    }
    std::string text_of(const std::string& body) {
        std::string text;
        for (const auto& d : sse_data(body)) {
            if (d == "[DONE]") {
                continue;
            }
            const auto c = json::parse(d);
            if (c.contains("choices") && !c["choices"].empty()) {
                text += c["choices"][0]["delta"].value("content", "");
            }
        }
        return text;
    }
    std::unique_ptr<MockUpstream> up_;
    std::unique_ptr<Gateway> gw_;
};

TEST_F(BedrockUpstream, SignedConverseRoundTrip) {
    Client c(gw_->port());
    const auto r = c.post_json(
        "/v1/chat/completions",
        R"({"model":"claude","max_tokens":100,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello there"}]})");
    ASSERT_EQ(r.status, 200) << r.body;  // the mock verified the SigV4 signature
    const auto j = json::parse(r.body);
    EXPECT_EQ(j["choices"][0]["message"]["content"],
              "This is a mock answer from sluice. You said: hello there");
    EXPECT_EQ(j["usage"]["prompt_tokens"], 9);
    EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 2);
    const auto sent = up_->requests().back();
    EXPECT_EQ(sent.target, "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse");
    EXPECT_NE(sent.header("authorization").find("/us-west-2/bedrock/aws4_request"), std::string::npos);
    EXPECT_EQ(sent.header("authorization").find("mock-secret"), std::string::npos);
    const auto body = json::parse(sent.body);
    EXPECT_EQ(body["system"][0]["text"], "Be brief.");
    EXPECT_EQ(body["inferenceConfig"]["maxTokens"], 100);
}

TEST_F(BedrockUpstream, ConverseStreamIsDecodedFromEventStreamFrames) {
    Client c(gw_->port());
    const auto r = c.post_json(
        "/v1/chat/completions",
        R"({"model":"claude","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello there"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(text_of(r.body), "This is a mock answer from sluice. You said: hello there");
    const auto data = sse_data(r.body);
    EXPECT_EQ(data.back(), "[DONE]");
    EXPECT_EQ(json::parse(data[data.size() - 2])["usage"]["completion_tokens"], 9);
    EXPECT_EQ(up_->requests().back().target,
              "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream");
}

TEST_F(BedrockUpstream, StreamedToolCall) {
    Client c(gw_->port());
    const auto r =
        c.post_json("/v1/chat/completions",
                    R"({"model":"claude","stream":true,"messages":[{"role":"user","content":"weather?"}],
        "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    std::string args;
    std::string finish;
    for (const auto& d : sse_data(r.body)) {
        if (d == "[DONE]") {
            continue;
        }
        const auto chunk = json::parse(d);
        const auto& delta = chunk["choices"][0]["delta"];
        if (delta.contains("tool_calls")) {
            args += delta["tool_calls"][0]["function"].value("arguments", "");
        }
        if (!chunk["choices"][0]["finish_reason"].is_null()) {
            finish = chunk["choices"][0]["finish_reason"];
        }
    }
    EXPECT_EQ(json::parse(args), json::parse(R"({"city":"mock"})"));
    EXPECT_EQ(finish, "tool_calls");
}

TEST_F(BedrockUpstream, BadCrcEndsTheStreamWithAnErrorEvent) {
    Client c(gw_->port());
    const auto r = c.post_json(
        "/v1/chat/completions",
        R"({"model":"claude","stream":true,"messages":[{"role":"user","content":"fault:bad_crc"}]})");
    ASSERT_EQ(r.status, 200);
    const auto data = sse_data(r.body);
    ASSERT_FALSE(data.empty());
    EXPECT_NE(data.back(), "[DONE]");
    EXPECT_EQ(json::parse(data.back())["error"]["type"], "server_error");
}

TEST_F(BedrockUpstream, ExceptionInsideTheStreamBecomesAnErrorEvent) {
    Client c(gw_->port());
    const auto r = c.post_json(
        "/v1/chat/completions",
        R"({"model":"claude","stream":true,"messages":[{"role":"user","content":"fault:throttle"}]})");
    ASSERT_EQ(r.status, 200);
    EXPECT_NE(r.body.find(R"("code":"throttlingException")"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
}

TEST_F(BedrockUpstream, AnthropicFrontDoorReachesBedrock) {
    Client c(gw_->port());
    auto r = c.post_json(
        "/v1/messages",
        R"({"model":"claude","max_tokens":20,"messages":[{"role":"user","content":"hello there"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["content"][0]["text"],
              "This is a mock answer from sluice. You said: hello there");
    r = c.post_json(
        "/v1/messages",
        R"({"model":"claude","max_tokens":20,"stream":true,"messages":[{"role":"user","content":"hello there"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("event: message_start"), std::string::npos);
    EXPECT_NE(r.body.find("\"text\":\"hello \""), std::string::npos) << r.body;
    EXPECT_TRUE(r.body.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")) << r.body;
}

TEST(BedrockAuth, WrongCredentialsAreAnUpstreamAuthError) {
    setenv("AWS_ACCESS_KEY_ID", kMockAwsAccessKey, 1);
    setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret", 1);
    MockUpstream up;
    Gateway gw(
        "providers:\n  br:\n    kind: bedrock\n    region: us-east-1\n    base_url: \"http://127.0.0.1:" +
        std::to_string(up.port()) + "\"\nroutes:\n  - model: \"m\"\n    targets: [{provider: br}]\n");
    Client c(gw.port());
    const auto r =
        c.post_json("/v1/chat/completions", R"({"model":"m","messages":[{"role":"user","content":"x"}]})");
    EXPECT_EQ(r.status, 502);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "upstream_auth_error");
    EXPECT_EQ(r.body.find("not-the-secret"), std::string::npos);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

}  // namespace
}  // namespace sluice::test
