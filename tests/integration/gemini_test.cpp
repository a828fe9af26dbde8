// OpenAI-format clients against a Gemini upstream (the mock speaks Gemini's wire format).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_upstream.hpp"

namespace sluice::test {
namespace {

using nlohmann::json;

class GeminiUpstream : public ::testing::Test {
protected:
    void SetUp() override {
        up_ = std::make_unique<MockUpstream>();
        gw_ = std::make_unique<Gateway>(
            "providers:\n  gem:\n    kind: gemini\n    base_url: \"http://127.0.0.1:" +
            std::to_string(up_->port()) +
            "\"\n    api_key: \"AIza-gemini-key\"\n"
            "routes:\n  - model: \"gemini-*\"\n    targets: [{provider: gem}]\n"
            "  - model: \"text-embedding-*\"\n    targets: [{provider: gem}]\n");
    }
    std::unique_ptr<MockUpstream> up_;
    std::unique_ptr<Gateway> gw_;
};

const std::string kTools =
    R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}])";

TEST_F(GeminiUpstream, ChatStreamedAndNot) {
    Client c(gw_->port());
    auto r = c.post_json(
        "/v1/chat/completions",
        R"({"model":"gemini-2.5-flash","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello there"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["choices"][0]["message"]["content"],
              "This is a mock answer from sluice. You said: hello there");
    EXPECT_EQ(j["choices"][0]["message"]["reasoning_content"], "thinking about it");
    EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 1);
    const auto sent = up_->requests().back();
    EXPECT_EQ(sent.target, "/v1beta/models/gemini-2.5-flash:generateContent");
    EXPECT_EQ(sent.header("x-goog-api-key"), "AIza-gemini-key");
    EXPECT_EQ(sent.target.find("key="), std::string::npos);
    r = c.post_json(
        "/v1/chat/completions",
        R"({"model":"gemini-2.5-flash","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello there"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(up_->requests().back().target, "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse");
    const auto data = sse_data(r.body);
    ASSERT_GE(data.size(), 4u);
    EXPECT_EQ(data.back(), "[DONE]");
    std::string text;
    for (std::size_t i = 0; i + 2 < data.size(); ++i) {
        text += json::parse(data[i])["choices"][0]["delta"].value("content", "");
    }
    EXPECT_EQ(text, "This is a mock answer from sluice. You said: hello there");
    // OpenAI counts reasoning in completion tokens: 11 answer tokens + 2 thought tokens.
    EXPECT_EQ(json::parse(data[data.size() - 2])["usage"]["completion_tokens"], 13);
}

TEST_F(GeminiUpstream, ThoughtSignatureSurvivesAToolRoundTrip) {
    Client c(gw_->port());
    const auto first =
        c.post_json("/v1/chat/completions",
                    R"({"model":"gemini-3-pro","messages":[{"role":"user","content":"weather in Paris?"}],)" +
                        kTools + "}");
    ASSERT_EQ(first.status, 200) << first.body;
    const auto assistant = json::parse(first.body)["choices"][0]["message"];
    ASSERT_TRUE(assistant.contains("tool_calls"));
    EXPECT_FALSE(assistant["tool_calls"][0]["extra_content"]["google"]["thought_signature"]
                     .get<std::string>()
                     .empty());
    // The client sends the assistant message back as it got it, plus the tool's answer.
    json follow = {{"model", "gemini-3-pro"},
                   {"messages", json::array({{{"role", "user"}, {"content", "weather in Paris?"}},
                                             assistant,
                                             {{"role", "tool"},
                                              {"tool_call_id", assistant["tool_calls"][0]["id"]},
                                              {"content", "{\"temp\":18}"}}})},
                   {"tools", json::parse("{" + kTools + "}")["tools"]}};
    const auto second = c.post_json("/v1/chat/completions", follow.dump());
    ASSERT_EQ(second.status, 200) << second.body;  // the mock rejects calls without their signature
    EXPECT_EQ(json::parse(second.body)["choices"][0]["message"]["content"],
              R"(The tool answered {"temp":18})");
    // A history that lost the signature is refused by Gemini 3, and the client hears why.
    follow["messages"][1]["tool_calls"][0].erase("extra_content");
    const auto lost = c.post_json("/v1/chat/completions", follow.dump());
    EXPECT_EQ(lost.status, 400);
    EXPECT_NE(lost.body.find("thought_signature"), std::string::npos);
    EXPECT_EQ(json::parse(lost.body)["error"]["code"], "invalid_argument");
}

TEST_F(GeminiUpstream, StreamedToolCallCarriesTheSignature) {
    Client c(gw_->port());
    const auto r = c.post_json(
        "/v1/chat/completions",
        R"({"model":"gemini-3-pro","stream":true,"messages":[{"role":"user","content":"weather?"}],)" +
            kTools + "}");
    ASSERT_EQ(r.status, 200) << r.body;
    bool found = false;
    for (const auto& d : sse_data(r.body)) {
        if (d == "[DONE]") {
            continue;
        }
        const auto chunk = json::parse(d);
        const auto& delta = chunk["choices"][0]["delta"];
        if (delta.contains("tool_calls")) {
            found = true;
            EXPECT_EQ(json::parse(delta["tool_calls"][0]["function"]["arguments"].get<std::string>()),
                      json::parse(R"({"city":"mock"})"));
            EXPECT_TRUE(delta["tool_calls"][0].contains("extra_content"));
        }
    }
    EXPECT_TRUE(found);
}

TEST_F(GeminiUpstream, EmbeddingsFloatAndBase64) {
    Client c(gw_->port());
    auto r =
        c.post_json("/v1/embeddings", R"({"model":"text-embedding-004","input":["a","b"],"dimensions":2})");
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["data"][1]["embedding"], json::parse("[0.125,0.25]"));
    EXPECT_EQ(up_->requests().back().target, "/v1beta/models/text-embedding-004:batchEmbedContents");
    r = c.post_json(
        "/v1/embeddings",
        R"({"model":"text-embedding-004","input":"a","dimensions":2,"encoding_format":"base64"})");
    j = json::parse(r.body);
    EXPECT_EQ(j["data"][0]["embedding"], "AAAAPgAAgD4=");  // float32 LE 0.125, 0.25
}

TEST_F(GeminiUpstream, AnthropicFrontDoorReachesGemini) {
    Client c(gw_->port());
    auto r = c.post_json(
        "/v1/messages",
        R"({"model":"gemini-2.5-flash","max_tokens":50,"messages":[{"role":"user","content":"hello there"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = json::parse(r.body);
    EXPECT_EQ(j["type"], "message");
    EXPECT_EQ(j["content"].back()["text"], "This is a mock answer from sluice. You said: hello there");
    r = c.post_json(
        "/v1/messages",
        R"({"model":"gemini-2.5-flash","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hello there"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("event: message_start"), std::string::npos);
    EXPECT_NE(r.body.find("\"text\":\"hello \""), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("\"output_tokens\":13"), std::string::npos) << r.body;
    EXPECT_TRUE(r.body.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")) << r.body;
}

TEST_F(GeminiUpstream, ModelsAreListedFromTheProvider) {
    Client c(gw_->port());
    const auto r = c.request("GET", "/v1/models");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto listed = json::parse(r.body);
    std::vector<std::string> ids;
    for (const auto& m : listed["data"]) {
        ids.push_back(m["id"]);
    }
    EXPECT_EQ(ids, (std::vector<std::string>{"gemini-2.5-flash", "gemini-2.5-pro", "text-embedding-004"}));
}

}  // namespace
}  // namespace sluice::test
