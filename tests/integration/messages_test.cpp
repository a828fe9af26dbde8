// The Anthropic-compatible front door: POST /v1/messages to an OpenAI-format provider
// (translated) and to an Anthropic provider (passed through).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_upstream.hpp"

namespace sluice::test {
namespace {

using nlohmann::json;

class FrontDoor : public ::testing::Test {
protected:
    void SetUp() override {
        up_ = std::make_unique<MockUpstream>();
        const std::string base = "http://127.0.0.1:" + std::to_string(up_->port());
        gw_ = std::make_unique<Gateway>(
            "providers:\n  openai:\n    kind: openai\n    base_url: \"" + base +
            "/v1\"\n    api_key: \"sk-oa\"\n"
            "  claude:\n    kind: anthropic\n    base_url: \"" +
            base +
            "\"\n    api_key: \"sk-ant\"\n"
            "routes:\n  - model: \"claude-*\"\n    targets: [{provider: claude}]\n"
            "  - model: \"sonnet\"\n    targets: [{provider: claude, model: \"claude-sonnet-4-5\"}]\n"
            "  - model: \"*\"\n    targets: [{provider: openai}]\n"
            "keys:\n  - {name: cc, key: \"claude-code-key\"}\n");
    }
    HttpResponse post(const std::string& path, const std::string& body) {
        Client c(gw_->port());
        return c.post_json(path, body,
                           {{"x-api-key", "claude-code-key"}, {"anthropic-version", "2023-06-01"}});
    }
    std::unique_ptr<MockUpstream> up_;
    std::unique_ptr<Gateway> gw_;
};

std::vector<std::pair<std::string, json>> events(const std::string& body) {
    std::vector<std::pair<std::string, json>> out;
    std::size_t pos = 0;
    while ((pos = body.find("event: ", pos)) != std::string::npos) {
        const auto eol = body.find('\n', pos);
        const std::string name = body.substr(pos + 7, eol - pos - 7);
        const auto data = body.find("data: ", eol);
        const auto end = body.find('\n', data);
        out.emplace_back(name, json::parse(body.substr(data + 6, end - data - 6)));
        pos = end;
    }
    return out;
}

TEST_F(FrontDoor, TranslatesToAnOpenAiProvider) {
    const auto r = post(
        "/v1/messages",
        R"({"model":"gpt-4o-mini","max_tokens":50,"system":"Be brief.","messages":[{"role":"user","content":"hello there"}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto j = json::parse(r.body);
    EXPECT_EQ(j["type"], "message");
    EXPECT_EQ(j["content"][0]["text"], "This is a mock answer from sluice. You said: hello there");
    EXPECT_EQ(j["stop_reason"], "end_turn");
    EXPECT_EQ(j["usage"]["input_tokens"], 10);  // the mock counts words + 3 per message
    const auto sent = json::parse(up_->requests().back().body);
    EXPECT_EQ(up_->requests().back().target, "/v1/chat/completions");
    EXPECT_EQ(sent["messages"][0], json::parse(R"({"role":"system","content":"Be brief."})"));
    EXPECT_EQ(sent["max_tokens"], 50);
}

TEST_F(FrontDoor, StreamsTheMessagesEventSequenceFromAnOpenAiProvider) {
    const auto r = post("/v1/messages", R"({"model":"gpt-4o-mini","max_tokens":50,"stream":true,"messages":[
        {"role":"user","content":"weather?"}],
        "tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}]})");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto ev = events(r.body);
    ASSERT_GE(ev.size(), 5u);
    EXPECT_EQ(ev.front().first, "message_start");
    EXPECT_EQ(ev.back().first, "message_stop");
    std::string args;
    std::string stop;
    for (const auto& [name, data] : ev) {
        EXPECT_EQ(data["type"], name);
        if (name == "content_block_start") {
            EXPECT_EQ(data["content_block"]["name"], "get_weather");
        } else if (name == "content_block_delta") {
            args += data["delta"]["partial_json"].get<std::string>();
        } else if (name == "message_delta") {
            stop = data["delta"]["stop_reason"];
            EXPECT_GT(data["usage"]["output_tokens"].get<int>(), 0);
        }
    }
    EXPECT_EQ(json::parse(args), json::parse(R"({"city":"mock"})"));
    EXPECT_EQ(stop, "tool_use");
    // sluice asked the OpenAI provider for usage.
    EXPECT_TRUE(json::parse(up_->requests().back().body)["stream_options"]["include_usage"].get<bool>());
}

TEST_F(FrontDoor, PassesThroughToAnAnthropicProvider) {
    const std::string body =
        R"({"model":"sonnet","max_tokens":64,"messages":[{"role":"user","content":[{"type":"text","text":"hi","cache_control":{"type":"ephemeral"}}]}],"top_k":3})";
    const auto r = post("/v1/messages", body);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(json::parse(r.body)["type"], "message");
    const auto sent = up_->requests().back();
    EXPECT_EQ(sent.target, "/v1/messages");
    EXPECT_EQ(sent.header("x-api-key"), "sk-ant");  // the provider's key, not the client's
    auto expected = json::parse(body);
    expected["model"] = "claude-sonnet-4-5";
    EXPECT_EQ(json::parse(sent.body), expected);  // untouched but for the model
    EXPECT_EQ(sent.header("anthropic-version"), "2023-06-01");
    {
        Client beta(gw_->port());
        beta.post_json("/v1/messages", body,
                       {{"x-api-key", "claude-code-key"},
                        {"anthropic-version", "2023-06-01"},
                        {"anthropic-beta", "interleaved-thinking-2025-05-14"}});
        EXPECT_EQ(up_->requests().back().header("anthropic-beta"), "interleaved-thinking-2025-05-14");
    }
    const auto s = post(
        "/v1/messages",
        R"({"model":"claude-haiku","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hey"}]})");
    const auto ev = events(s.body);
    ASSERT_FALSE(ev.empty());
    EXPECT_EQ(ev.front().first, "message_start");
    EXPECT_EQ(ev.back().first, "message_stop");
    const auto counted =
        post("/v1/messages/count_tokens",
             R"({"model":"claude-haiku","messages":[{"role":"user","content":"count me"}]})");
    ASSERT_EQ(counted.status, 200) << counted.body;
    EXPECT_TRUE(json::parse(counted.body)["input_tokens"].is_number());
    EXPECT_EQ(up_->requests().back().target, "/v1/messages/count_tokens");
}

TEST_F(FrontDoor, ErrorsHaveAnthropicShape) {
    auto r = post("/v1/messages",
                  R"({"model":"gpt-4o-mini","max_tokens":5,"messages":[{"role":"system","content":"x"}]})");
    EXPECT_EQ(r.status, 400);
    auto j = json::parse(r.body);
    EXPECT_EQ(j["type"], "error");
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    Client c(gw_->port());
    r = c.post_json("/v1/messages", R"({"model":"claude-x","max_tokens":5,"messages":[]})",
                    {{"x-api-key", "wrong"}});
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(json::parse(r.body)["error"]["type"], "authentication_error");
    r = post("/v1/messages/count_tokens", R"({"model":"gpt-4o-mini","messages":[]})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(json::parse(r.body)["type"], "error");
    // An error answer from the Anthropic provider comes back as Anthropic sent it... in Anthropic's shape.
    r = post("/v1/messages",
             R"({"model":"claude-x","messages":[{"role":"user","content":"no max_tokens"}]})");
    EXPECT_EQ(r.status, 400);
    j = json::parse(r.body);
    EXPECT_EQ(j["error"]["type"], "invalid_request_error");
    EXPECT_NE(j["error"]["message"].get<std::string>().find("max_tokens"), std::string::npos);
}

}  // namespace
}  // namespace sluice::test
