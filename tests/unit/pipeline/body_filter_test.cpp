// Body filters over non-stream answers, in their dialect-neutral view: what they see (text,
// tool arguments, finish reasons, usage) is the same on both front doors, an edit changes the
// client's JSON only where it was made, a refusal is answered in the client's dialect and is
// final, and an edit that breaks a tool call's arguments is refused.
#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <sluice/filter.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_upstream.hpp"

namespace sluice::test {
namespace {

using nlohmann::json;
using Kind = StreamDelta::Kind;

class BodyFilter final : public Filter {
public:
    std::string_view name() const noexcept override { return "test-body"; }
    unsigned hooks() const noexcept override { return response_body; }
    std::optional<GatewayError> on_response_body(const RequestContext& ctx,
                                                 ResponseBody& body) const override {
        {
            std::lock_guard lock(mutex);
            seen = body;
        }
        const std::string& m = ctx.api.model;
        if (m == "refuse") {
            return GatewayError::bad_request("The answer broke the test policy.", "content_policy_violation");
        }
        for (BodyPart& p : body.parts) {
            if (m == "rewrite" && p.kind == Kind::text) {
                if (const auto at = p.text.find("secret"); at != std::string::npos) {
                    p.text.replace(at, 6, "[redacted]");
                }
            }
            if (m == "break-args" && p.kind == Kind::tool_args) {
                p.text = "not json";
            }
            if (m == "rewrite-args" && p.kind == Kind::tool_args) {
                p.text = R"({"city":"[redacted]"})";
            }
        }
        if (m == "add-part") {
            body.parts.push_back(BodyPart{Kind::text, 0, 0, "extra"});
        }
        return std::nullopt;
    }
    ResponseBody last() const {
        std::lock_guard lock(mutex);
        return seen;
    }
    mutable std::mutex mutex;
    mutable ResponseBody seen;
};

constexpr const char* kSaid = "a secret b";
const std::string kAnswer = std::string("This is a mock answer from sluice. You said: ") + kSaid;
constexpr const char* kTools =
    R"("tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])";
constexpr const char* kAnthropicTools =
    R"("tools":[{"name":"weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}])";

std::string chat(const std::string& model, bool tools = false) {
    return R"({"model":")" + model + R"(","messages":[{"role":"user","content":")" + kSaid + R"("}])" +
           (tools ? std::string(",") + kTools : "") + "}";
}

std::string messages(const std::string& model, bool tools = false) {
    return R"({"model":")" + model + R"(","max_tokens":64,"messages":[{"role":"user","content":")" + kSaid +
           R"("}])" + (tools ? std::string(",") + kAnthropicTools : "") + "}";
}

struct BodyFilterTest : ::testing::Test {
    MockUpstream up;
    std::shared_ptr<BodyFilter> filter = std::make_shared<BodyFilter>();
    Gateway gw{"providers:\n  up:\n    kind: openai\n    base_url: \"" + up.base_url() +
                   "\"\n    api_key: \"sk-body\"\n  again:\n    kind: openai\n    base_url: \"" +
                   up.base_url() +
                   "\"\n    api_key: \"sk-body\"\nroutes:\n  - model: \"*\"\n    targets: [{provider: up}, "
                   "{provider: again}]\n    fallback_on: {content_policy: [\"lenient\"]}\n"
                   "  - name: \"lenient\"\n    targets: [{provider: again}]\n",
               {filter}};
};

TEST_F(BodyFilterTest, SeesTheSameViewOnBothFrontDoors) {
    Client c(gw.port());
    ASSERT_EQ(c.post_json("/v1/chat/completions", chat("look")).status, 200);
    const ResponseBody openai = filter->last();
    ASSERT_EQ(openai.parts.size(), 1u);
    EXPECT_EQ(openai.parts[0].kind, Kind::text);
    EXPECT_EQ(openai.parts[0].text, kAnswer);
    EXPECT_EQ(openai.finish_reasons, (std::vector<std::string>{"stop"}));
    EXPECT_GT(openai.usage.completion_tokens, 0);

    ASSERT_EQ(c.post_json("/v1/messages", messages("look")).status, 200);
    const ResponseBody anthropic = filter->last();
    ASSERT_EQ(anthropic.parts.size(), 1u);
    EXPECT_EQ(anthropic.parts[0].text, kAnswer);
    EXPECT_EQ(anthropic.finish_reasons, (std::vector<std::string>{"stop"})) << "end_turn, in OpenAI's words";
    EXPECT_EQ(anthropic.usage.completion_tokens, openai.usage.completion_tokens);
    EXPECT_EQ(anthropic.usage.prompt_tokens, openai.usage.prompt_tokens);

    ASSERT_EQ(c.post_json("/v1/messages", messages("look", true)).status, 200);
    const ResponseBody tool = filter->last();
    ASSERT_EQ(tool.parts.size(), 1u);
    EXPECT_EQ(tool.parts[0].kind, Kind::tool_args);
    EXPECT_EQ(json::parse(tool.parts[0].text, nullptr, false).is_object(), true) << tool.parts[0].text;
    EXPECT_EQ(tool.finish_reasons, (std::vector<std::string>{"tool_calls"}));
}

TEST_F(BodyFilterTest, AnEditChangesTheClientsJsonWhereItWasMade) {
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("rewrite"));
    ASSERT_EQ(r.status, 200) << r.body;
    const json j = json::parse(r.body, nullptr, false);
    EXPECT_EQ(j["choices"][0]["message"]["content"],
              "This is a mock answer from sluice. You said: a [redacted] b");
    EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
    EXPECT_TRUE(j["usage"].is_object());

    const auto a = c.post_json("/v1/messages", messages("rewrite"));
    ASSERT_EQ(a.status, 200) << a.body;
    const json ja = json::parse(a.body, nullptr, false);
    EXPECT_EQ(ja["content"][0]["text"], "This is a mock answer from sluice. You said: a [redacted] b");

    const auto t = c.post_json("/v1/messages", messages("rewrite-args", true));
    ASSERT_EQ(t.status, 200) << t.body;
    const json jt = json::parse(t.body, nullptr, false);
    EXPECT_EQ(jt["content"][0]["input"], json({{"city", "[redacted]"}})) << t.body;
    const auto o = c.post_json("/v1/chat/completions", chat("rewrite-args", true));
    ASSERT_EQ(o.status, 200) << o.body;
    const json jo = json::parse(o.body, nullptr, false);
    EXPECT_EQ(jo["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
              R"({"city":"[redacted]"})");
}

TEST_F(BodyFilterTest, ARefusalIsAnsweredInTheClientsDialectAndIsFinal) {
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("refuse"));
    EXPECT_EQ(r.status, 400) << r.body;
    const json j = json::parse(r.body, nullptr, false);
    EXPECT_EQ(j["error"]["code"], "content_policy_violation") << r.body;
    EXPECT_EQ(up.request_count(), 1u) << "no retry, no other target, no content-policy fallback";
    const auto a = c.post_json("/v1/messages", messages("refuse"));
    EXPECT_EQ(a.status, 400) << a.body;
    EXPECT_EQ(json::parse(a.body, nullptr, false)["type"], "error") << a.body;
}

TEST_F(BodyFilterTest, AnEditThatBreaksToolArgumentsOrTheViewIsRefused) {
    Client c(gw.port());
    const auto r = c.post_json("/v1/messages", messages("break-args", true));
    EXPECT_EQ(r.status, 500) << r.body;
    EXPECT_NE(r.body.find("left a tool call's arguments that are not a JSON object"), std::string::npos)
        << r.body;
    const auto p = c.post_json("/v1/chat/completions", chat("add-part"));
    EXPECT_EQ(p.status, 500) << p.body;
    EXPECT_NE(p.body.find("test-body"), std::string::npos) << p.body;
    EXPECT_NE(p.body.find("response_filter_error"), std::string::npos) << p.body;
}

}  // namespace
}  // namespace sluice::test
