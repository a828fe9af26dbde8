#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "providers/messages_translate.hpp"
#include "sse/sse.hpp"
#include "stream/client_encoders.hpp"

namespace sluice {
namespace {

using Json = nlohmann::json;

/// The translated answer; the translation must succeed.
Json messages_answer(const Json& chat, std::string_view model, Usage& u) {
    Json out;
    const auto err = chat_to_messages_response(chat, model, "upstream", out, u);
    EXPECT_FALSE(err.has_value()) << (err ? err->message : "");
    return out;
}

TEST(MessagesToChat, TranslatesTurnsToolsAndImages) {
    Json out;
    ASSERT_FALSE(messages_to_chat_request(Json::parse(R"({
      "model":"x","max_tokens":10,"stop_sequences":["END"],"metadata":{"user_id":"u1"},
      "system":[{"type":"text","text":"A"},{"type":"text","text":"B"}],
      "messages":[
        {"role":"user","content":[{"type":"text","text":"look"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}}]},
        {"role":"assistant","content":[{"type":"text","text":"calling"},{"type":"tool_use","id":"t1","name":"f","input":{"q":1}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":[{"type":"text","text":"42"}]},{"type":"text","text":"thanks"}]}],
      "tools":[{"name":"f","description":"d","input_schema":{"type":"object"}}],
      "tool_choice":{"type":"any","disable_parallel_tool_use":true},"stream":true})"),
                                          "upstream", out));
    EXPECT_EQ(out["model"], "upstream");
    EXPECT_EQ(out["messages"][0], Json::parse(R"({"role":"system","content":"A\n\nB"})"));
    EXPECT_EQ(out["messages"][1]["content"][1]["image_url"]["url"], "data:image/png;base64,AAAA");
    EXPECT_EQ(out["messages"][2]["tool_calls"][0]["function"]["arguments"], R"({"q":1})");
    EXPECT_EQ(out["messages"][3], Json::parse(R"({"role":"tool","tool_call_id":"t1","content":"42"})"));
    EXPECT_EQ(out["messages"][4]["content"][0]["text"], "thanks");
    EXPECT_EQ(out["tools"][0]["function"]["parameters"], Json::parse(R"({"type":"object"})"));
    EXPECT_EQ(out["tool_choice"], "required");
    EXPECT_EQ(out["parallel_tool_calls"], false);
    EXPECT_EQ(out["stop"], Json::array({"END"}));
    EXPECT_EQ(out["user"], "u1");
    EXPECT_TRUE(out["stream_options"]["include_usage"].get<bool>());
}

TEST(ChatToMessages, ResponseWithToolsAndCachedUsage) {
    Usage u;
    const Json out = messages_answer(Json::parse(R"({"id":"chatcmpl-1","choices":[{"message":{
        "content":"ok","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":2}"}}]},
        "finish_reason":"tool_calls"}],"usage":{"prompt_tokens":100,"completion_tokens":5,"prompt_tokens_details":{"cached_tokens":60}}})"),
                                     "asked-model", u);
    EXPECT_EQ(out["model"], "asked-model");
    EXPECT_EQ(out["content"][0], Json::parse(R"({"type":"text","text":"ok"})"));
    EXPECT_EQ(out["content"][1]["input"], Json::parse(R"({"a":2})"));
    EXPECT_EQ(out["stop_reason"], "tool_use");
    EXPECT_EQ(out["usage"]["input_tokens"], 40);
    EXPECT_EQ(out["usage"]["cache_read_input_tokens"], 60);
    EXPECT_EQ(u.prompt_tokens, 100);
}

TEST(AnthropicEventEncoder, F1_SameEventsAtEverySplit) {
    const std::string chat =
        "data: "
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n"
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi \"}}]}\n\n"
        "data: "
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"t0\","
        "\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{\\\"x\\\"\"}}]}}]}\n\n"
        "data: "
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{"
        "\"arguments\":\":1}\"}}]}}]}\n\n"
        "data: "
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"t1\","
        "\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}}]}}]}\n\n"
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
        "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}\n\n"
        "data: [DONE]\n\n";
    auto run = [&](std::size_t split) {
        OpenAiChunkDecoder s(std::make_unique<AnthropicEventEncoder>("m"));
        sse::Decoder d;
        std::string out;
        auto on = [&](const sse::Event& e) { s.on_event(e, out); };
        d.feed(std::string_view(chat).substr(0, split), on);
        d.feed(std::string_view(chat).substr(split), on);
        EXPECT_TRUE(s.finished());
        EXPECT_EQ(s.usage().completion_tokens, 3);
        return out;
    };
    const std::string whole = run(0);
    for (const char* expected :
         {"event: message_start", "\"index\":0,\"type\":\"content_block_start\"", "\"text\":\"Hi \"",
          "\"name\":\"a\"", "\"partial_json\":\":1}\"", "\"index\":2,\"type\":\"content_block_start\"",
          "\"stop_reason\":\"tool_use\"", "\"output_tokens\":3", "event: message_stop"}) {
        EXPECT_NE(whole.find(expected), std::string::npos) << expected << "\n" << whole;
    }
    for (std::size_t split = 1; split < chat.size(); ++split) {
        ASSERT_EQ(run(split), whole) << split;
    }
}

TEST(MessagesPassthrough, CountsUsageAndChangesNothing) {
    const std::string text =
        "event: message_start\ndata: "
        "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":"
        "5,\"output_tokens\":1}}}\n\n"
        "event: content_block_delta\ndata: "
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}"
        "\n\n"
        "event: message_delta\ndata: "
        "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":9}"
        "}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    MessagesPassthroughStream s;
    sse::Decoder d;
    std::string out;
    d.feed(text, [&](const sse::Event& e) { s.on_event(e, out); });
    EXPECT_EQ(out, text);
    EXPECT_TRUE(s.finished());
    EXPECT_EQ(s.usage().prompt_tokens, 15);
    EXPECT_EQ(s.usage().completion_tokens, 9);
}

TEST(AnthropicErrorShape, MapsStatuses) {
    GatewayError e = GatewayError::unauthorized("no");
    EXPECT_EQ(e.to_anthropic_json(),
              R"({"error":{"message":"no","type":"authentication_error"},"type":"error"})");
    e.status = 529;
    EXPECT_NE(e.to_anthropic_json().find("overloaded_error"), std::string::npos);
}

}  // namespace
}  // namespace sluice
