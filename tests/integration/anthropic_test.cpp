// OpenAI-format clients against an Anthropic upstream (the mock speaks Anthropic's wire format).
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_upstream.hpp"

namespace sluice::test {
namespace {

using nlohmann::json;

constexpr const char* kKey = "sk-ant-provider-key-777";

class AnthropicUpstream : public ::testing::Test {
protected:
    void SetUp() override {
        up_ = std::make_unique<MockUpstream>();
        gw_ = std::make_unique<Gateway>(
            "providers:\n  claude:\n    kind: anthropic\n    base_url: \"http://127.0.0.1:" +
            std::to_string(up_->port()) + "\"\n    api_key: \"" + kKey +
            "\"\n    default_max_tokens: 1000\n"
            // kChat's frequency_penalty has no Anthropic field: dropped by this setting.
            "    drop_unsupported_params: true\n"
            // One attempt: these tests check what a single exchange gives the client.
            "routes:\n  - model: \"claude-*\"\n    targets: [{provider: claude}]\n    retries: {attempts: "
            "1}\n"
            "  - model: \"smart\"\n    targets: [{provider: claude, model: \"claude-sonnet-4-5\"}]\n"
            "    retries: {attempts: 1}\n");
    }
    std::unique_ptr<MockUpstream> up_;
    std::unique_ptr<Gateway> gw_;
};

const std::string kChat =
    R"({"model":"smart","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hello there"}],"temperature":0.5,"frequency_penalty":0.1)";

TEST_F(AnthropicUpstream, NonStreamChatIsTranslatedBothWays) {
    Client c(gw_->port());
    const auto r = c.post_json("/v1/chat/completions", kChat + "}");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = json::parse(r.body);
    EXPECT_EQ(j["object"], "chat.completion");
    EXPECT_EQ(j["choices"][0]["message"]["content"],
              "This is a mock answer from sluice. You said: hello there");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(j["usage"]["prompt_tokens"], 5);
    EXPECT_EQ(r.header("content-type"), "application/json");
    const auto sent = up_->requests().back();
    EXPECT_EQ(sent.target, "/v1/messages");
    EXPECT_EQ(sent.header("x-api-key"), kKey);
    EXPECT_EQ(sent.header("anthropic-version"), "2023-06-01");
    EXPECT_TRUE(sent.header("authorization").empty());
    const auto body = json::parse(sent.body);
    EXPECT_EQ(body["model"], "claude-sonnet-4-5");
    EXPECT_EQ(body["max_tokens"], 1000);
    EXPECT_EQ(body["system"][0]["text"], "Be brief.");
    EXPECT_FALSE(body.contains("frequency_penalty"));
}

TEST_F(AnthropicUpstream, StreamIsTranslatedEventByEvent) {
    Client c(gw_->port());
    const auto r = c.post_json("/v1/chat/completions", kChat + R"(,"stream":true})");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto data = sse_data(r.body);
    ASSERT_GE(data.size(), 5u);
    EXPECT_EQ(data.back(), "[DONE]");
    std::string text;
    std::string finish;
    for (std::size_t i = 0; i + 1 < data.size(); ++i) {
        const auto chunk = json::parse(data[i]);
        EXPECT_FALSE(chunk.contains("usage"));
        text += chunk["choices"][0]["delta"].value("content", "");
        if (!chunk["choices"][0]["finish_reason"].is_null()) {
            finish = chunk["choices"][0]["finish_reason"];
        }
    }
    EXPECT_EQ(text, "This is a mock answer from sluice. You said: hello there");
    EXPECT_EQ(finish, "stop");
    const auto with_usage = c.post_json("/v1/chat/completions",
                                        kChat + R"(,"stream":true,"stream_options":{"include_usage":true}})");
    const auto d2 = sse_data(with_usage.body);
    const auto usage_chunk = json::parse(d2[d2.size() - 2]);
    EXPECT_TRUE(usage_chunk["choices"].empty());
    EXPECT_EQ(usage_chunk["usage"]["completion_tokens"], 11);
}

TEST_F(AnthropicUpstream, ToolCallsStreamWithArguments) {
    Client c(gw_->port());
    const std::string body =
        R"({"model":"claude-haiku","stream":true,"messages":[{"role":"user","content":"weather?"}],)"
        R"("tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city","days"]}}}]})";
    const auto r = c.post_json("/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200) << r.body;
    std::string args;
    std::string name;
    std::string finish;
    for (const auto& d : sse_data(r.body)) {
        if (d == "[DONE]") {
            continue;
        }
        const auto chunk = json::parse(d);
        const auto& delta = chunk["choices"][0]["delta"];
        if (delta.contains("tool_calls")) {
            const auto& f = delta["tool_calls"][0]["function"];
            if (f.contains("name")) {
                name = f["name"];
            }
            args += f.value("arguments", "");
        }
        if (!chunk["choices"][0]["finish_reason"].is_null()) {
            finish = chunk["choices"][0]["finish_reason"];
        }
    }
    EXPECT_EQ(name, "get_weather");
    EXPECT_EQ(json::parse(args), json::parse(R"({"city":"mock","days":1})"));
    EXPECT_EQ(finish, "tool_calls");
}

TEST_F(AnthropicUpstream, MultiTurnToolHistoryIsAccepted) {
    Client c(gw_->port());
    const std::string body = R"({"model":"claude-x","messages":[
        {"role":"user","content":"weather in Paris?"},
        {"role":"assistant","content":null,"tool_calls":[{"id":"toolu_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
        {"role":"tool","tool_call_id":"toolu_1","content":"18C and sunny"}],
        "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}]})";
    const auto r = c.post_json("/v1/chat/completions", body);
    ASSERT_EQ(r.status, 200) << r.body;  // the mock checks alternation and tool_result placement
    EXPECT_EQ(json::parse(r.body)["choices"][0]["finish_reason"], "stop");
}

TEST_F(AnthropicUpstream, GoldenStreamOverTheWire) {
    std::ifstream in(std::string(SLUICE_SOURCE_DIR) +
                     "/tests/data/providers/anthropic/stream_tools_thinking.sse");
    std::ostringstream ss;
    ss << in.rdbuf();
    const std::string sse = ss.str();
    std::string raw =
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (std::size_t pos = 0; pos < sse.size(); pos += 37) {  // arbitrary chunk boundaries
        const std::string part = sse.substr(pos, 37);
        char size[16];
        std::snprintf(size, sizeof size, "%zx\r\n", part.size());
        raw += size + part + "\r\n";
    }
    raw += "0\r\n\r\n";
    up_->enqueue_raw(raw);
    Client c(gw_->port());
    const auto r = c.post_json("/v1/chat/completions", kChat + R"(,"stream":true})");
    ASSERT_EQ(r.status, 200);
    const auto data = sse_data(r.body);
    EXPECT_EQ(data.back(), "[DONE]");
    EXPECT_NE(r.body.find(R"("reasoning_content":"Two cities: call the tool twice.")"), std::string::npos);
    EXPECT_NE(r.body.find(R"("id":"toolu_01B")"), std::string::npos);
}

TEST_F(AnthropicUpstream, ErrorsKeepStatusInOpenAiShape) {
    up_->enqueue_raw(
        "HTTP/1.1 529 Overloaded\r\nContent-Type: application/json\r\nContent-Length: 75\r\n\r\n"
        R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
    Client c(gw_->port());
    auto r = c.post_json("/v1/chat/completions", kChat + "}");
    EXPECT_EQ(r.status, 529);
    auto j = json::parse(r.body);
    EXPECT_EQ(j["error"]["code"], "overloaded_error");
    EXPECT_EQ(j["error"]["type"], "server_error");
    r = c.post_json("/v1/embeddings", R"({"model":"claude-x","input":"a"})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "unsupported_endpoint");
}

}  // namespace
}  // namespace sluice::test
