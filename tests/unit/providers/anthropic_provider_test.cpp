#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "api/api_request.hpp"
#include "provider_errors.hpp"
#include "providers/anthropic_provider.hpp"
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
Json anthropic_answer(const Json& msg, Usage& u) {
    Json out;
    const auto err = anthropic_to_openai(msg, "anthropic", kCreated, out, u);
    EXPECT_FALSE(err.has_value()) << (err ? err->message : "");
    EXPECT_EQ(out.value("created", std::int64_t{0}), kCreated);
    return out;
}

std::string fixture(const std::string& name) {
    std::ifstream in(std::string(SLUICE_TEST_DATA) + "/providers/anthropic/" + name);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Json translate(const Json& in, int default_max = 4096) {
    Json out;
    auto err = openai_to_anthropic(in, "claude-x", default_max, out);
    EXPECT_FALSE(err) << (err ? err->message : "");
    return out;
}

TEST(AnthropicRequest, SystemTurnsAndDefaults) {
    const Json out = translate(Json::parse(R"({
      "model":"alias","messages":[
        {"role":"system","content":"Be brief."},
        {"role":"developer","content":[{"type":"text","text":"Use metric.","cache_control":{"type":"ephemeral"}}]},
        {"role":"user","content":"Hi"},
        {"role":"user","content":[{"type":"text","text":"there"}]},
        {"role":"assistant","content":"Hello"}],
      "stop":"END","temperature":0.3,"user":"u-42"})"));
    EXPECT_EQ(out["model"], "claude-x");
    EXPECT_EQ(out["max_tokens"], 4096);
    EXPECT_EQ(out["system"], Json::parse(R"([{"type":"text","text":"Be brief."},
        {"type":"text","text":"Use metric.","cache_control":{"type":"ephemeral"}}])"));
    ASSERT_EQ(out["messages"].size(), 2u);  // the two user turns merged
    EXPECT_EQ(out["messages"][0]["content"],
              Json::parse(R"([{"type":"text","text":"Hi"},{"type":"text","text":"there"}])"));
    EXPECT_EQ(out["stop_sequences"], Json::array({"END"}));
    EXPECT_EQ(out["metadata"]["user_id"], "u-42");
}

TEST(AnthropicRequest, FieldsAnthropicLacksAre400UnlessTheProviderDropsThem) {
    const Json in = Json::parse(R"({"model":"m","messages":[{"role":"user","content":"Hi"}],
                                     "frequency_penalty":1,"seed":7})");
    Json out;
    const auto err = openai_to_anthropic(in, "claude-x", 4096, out);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->status, 400);
    EXPECT_EQ(err->param, "frequency_penalty");
    out = Json();
    ASSERT_FALSE(openai_to_anthropic(in, "claude-x", 4096, out, true));
    EXPECT_FALSE(out.contains("frequency_penalty"));
    EXPECT_FALSE(out.contains("seed"));
    EXPECT_EQ(out["messages"].size(), 1u);
}

TEST(AnthropicRequest, ImagesToolsAndToolResults) {
    const Json out = translate(Json::parse(R"({
      "messages":[
        {"role":"user","content":[
          {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}},
          {"type":"image_url","image_url":{"url":"https://example.com/a.jpg"},"cache_control":{"type":"ephemeral"}}]},
        {"role":"assistant","content":null,"tool_calls":[
          {"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},
          {"id":"call_2","type":"function","function":{"name":"f","arguments":""}}]},
        {"role":"tool","tool_call_id":"call_1","content":"one"},
        {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"two"}]}],
      "tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"}},"cache_control":{"type":"ephemeral"}}],
      "tool_choice":{"type":"function","function":{"name":"f"}},
      "parallel_tool_calls":false,"max_completion_tokens":99})"));
    const Json& user = out["messages"][0]["content"];
    EXPECT_EQ(user[0]["source"],
              Json::parse(R"({"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="})"));
    EXPECT_EQ(user[1]["source"], Json::parse(R"({"type":"url","url":"https://example.com/a.jpg"})"));
    EXPECT_EQ(user[1]["cache_control"]["type"], "ephemeral");
    const Json& assistant = out["messages"][1]["content"];
    EXPECT_EQ(assistant[0], Json::parse(R"({"type":"tool_use","id":"call_1","name":"f","input":{"x":1}})"));
    EXPECT_EQ(assistant[1]["input"], Json::object());
    ASSERT_EQ(out["messages"].size(), 3u);  // both tool results in one user turn
    EXPECT_EQ(out["messages"][2]["role"], "user");
    EXPECT_EQ(out["messages"][2]["content"][0],
              Json::parse(R"({"type":"tool_result","tool_use_id":"call_1","content":"one"})"));
    EXPECT_EQ(out["messages"][2]["content"][1]["content"], Json::parse(R"([{"type":"text","text":"two"}])"));
    EXPECT_EQ(
        out["tools"][0],
        Json::parse(
            R"({"name":"f","description":"d","input_schema":{"type":"object"},"cache_control":{"type":"ephemeral"}})"));
    EXPECT_EQ(out["tool_choice"],
              Json::parse(R"({"type":"tool","name":"f","disable_parallel_tool_use":true})"));
    EXPECT_EQ(out["max_tokens"], 99);
}

TEST(AnthropicRequest, ToolChoiceResponseFormatAndReasoning) {
    EXPECT_EQ(translate(Json::parse(R"({"messages":[],"tool_choice":"required"})"))["tool_choice"]["type"],
              "any");
    EXPECT_EQ(translate(Json::parse(R"({"messages":[],"tool_choice":"none"})"))["tool_choice"]["type"],
              "none");
    const Json rf = translate(Json::parse(
        R"({"messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object"}}}})"));
    EXPECT_EQ(rf["output_config"],
              Json::parse(R"({"format":{"type":"json_schema","schema":{"type":"object"}}})"));
    const Json r = translate(Json::parse(R"({"messages":[],"reasoning_effort":"high","max_tokens":1000})"));
    EXPECT_EQ(r["thinking"], Json::parse(R"({"type":"enabled","budget_tokens":16384})"));
    EXPECT_GT(r["max_tokens"].get<int>(), 16384);
    const Json native = translate(Json::parse(R"({"messages":[],"top_k":5,"stream":true})"));
    EXPECT_EQ(native["top_k"], 5);
    EXPECT_EQ(native["stream"], true);
}

TEST(AnthropicRequest, ThinkingBlocksGoBackFirstWithTheirSignatures) {
    const Json out = translate(Json::parse(R"({"messages":[
        {"role":"user","content":"q"},
        {"role":"assistant","content":null,
         "thinking_blocks":[{"type":"thinking","thinking":"plan","signature":"SIG"}],
         "tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"t1","content":"ok"}]})"));
    const Json& assistant = out["messages"][1]["content"];
    EXPECT_EQ(assistant[0], Json::parse(R"({"type":"thinking","thinking":"plan","signature":"SIG"})"));
    EXPECT_EQ(assistant[1]["type"], "tool_use");
}

TEST(AnthropicRequest, WhatCannotBeExpressedIs400) {
    Json out;
    EXPECT_EQ(openai_to_anthropic(Json::parse(R"({"messages":[],"n":2})"), "m", 1, out)->param, "n");
    EXPECT_TRUE(openai_to_anthropic(Json::parse(R"({"messages":[{"role":"assistant","tool_calls":[
        {"id":"c","type":"function","function":{"name":"f","arguments":"not json"}}]}]})"),
                                    "m", 1, out));
    EXPECT_TRUE(openai_to_anthropic(Json::parse(R"({"messages":[{"role":"user","content":[
        {"type":"image_url","image_url":{"url":"file:///etc/passwd"}}]}]})"),
                                    "m", 1, out));
}

TEST(AnthropicResponse, TextToolsThinkingAndCachedUsage) {
    Usage u;
    const Json out = anthropic_answer(Json::parse(R"({
      "id":"msg_1","type":"message","role":"assistant","model":"claude-x",
      "content":[{"type":"thinking","thinking":"hmm","signature":"s"},{"type":"text","text":"Sure."},
                 {"type":"tool_use","id":"toolu_1","name":"f","input":{"a":[1,2]}}],
      "stop_reason":"tool_use",
      "usage":{"input_tokens":10,"cache_read_input_tokens":90,"cache_creation_input_tokens":3,"output_tokens":7}})"),
                                      u);
    const Json& msg = out["choices"][0]["message"];
    EXPECT_EQ(msg["content"], "Sure.");
    EXPECT_EQ(msg["reasoning_content"], "hmm");
    EXPECT_EQ(msg["thinking_blocks"],
              Json::parse(R"([{"type":"thinking","thinking":"hmm","signature":"s"}])"));
    EXPECT_EQ(msg["tool_calls"][0]["function"]["arguments"], R"({"a":[1,2]})");
    EXPECT_EQ(out["choices"][0]["finish_reason"], "tool_calls");
    EXPECT_EQ(out["usage"]["prompt_tokens"], 103);
    EXPECT_EQ(out["usage"]["completion_tokens"], 7);
    EXPECT_EQ(out["usage"]["prompt_tokens_details"]["cached_tokens"], 90);
    EXPECT_EQ(u.prompt_tokens, 103);
    for (const auto& [stop, finish] :
         std::vector<std::pair<std::string, std::string>>{{"end_turn", "stop"},
                                                          {"stop_sequence", "stop"},
                                                          {"max_tokens", "length"},
                                                          {"refusal", "content_filter"}}) {
        EXPECT_EQ(anthropic_answer(Json{{"stop_reason", stop}}, u)["choices"][0]["finish_reason"], finish);
    }
}

struct StreamResult {
    std::string out;
    Usage usage;
    bool finished = false;
    std::optional<GatewayError> error;  ///< why the relay stopped
};

StreamResult relay(const std::string& sse_text, bool wants_usage, std::size_t split) {
    AnthropicStreamRelay r(std::make_unique<OpenAiChunkEncoder>(wants_usage), 1700000000);
    sse::Decoder d;
    StreamResult res;
    auto on = [&](const sse::Event& e) {
        if (!res.error && !r.on_event(e, res.out)) {
            res.error = r.error();
        }
    };
    if (split > 0 && split < sse_text.size()) {
        d.feed(std::string_view(sse_text).substr(0, split), on);
        d.feed(std::string_view(sse_text).substr(split), on);
    } else {
        d.feed(sse_text, on);
    }
    res.usage = r.usage();
    res.finished = r.finished();
    return res;
}

TEST(AnthropicStream, F1_ToolsThinkingAndUsageAtEverySplit) {
    const std::string text = fixture("stream_tools_thinking.sse");
    ASSERT_FALSE(text.empty());
    const StreamResult whole = relay(text, true, 0);
    EXPECT_TRUE(whole.finished);
    std::string content;
    std::string reasoning;
    std::map<int, std::string> args;
    std::map<int, std::string> ids;
    std::string finish;
    Json usage;
    std::vector<std::string> data;
    for (const auto& line : [&] {
             std::vector<std::string> v;
             std::istringstream in(whole.out);
             for (std::string l; std::getline(in, l);) {
                 if (l.rfind("data: ", 0) == 0) {
                     v.push_back(l.substr(6));
                 }
             }
             return v;
         }()) {
        data.push_back(line);
    }
    ASSERT_FALSE(data.empty());
    EXPECT_EQ(data.back(), "[DONE]");
    for (std::size_t i = 0; i + 1 < data.size(); ++i) {
        const Json c = Json::parse(data[i]);
        EXPECT_EQ(c["id"], "msg_01XYZ");
        EXPECT_EQ(c["object"], "chat.completion.chunk");
        if (c["choices"].empty()) {
            usage = c["usage"];
            continue;
        }
        const Json& delta = c["choices"][0]["delta"];
        content += delta.value("content", "");
        reasoning += delta.value("reasoning_content", "");
        if (delta.contains("tool_calls")) {
            const Json& tc = delta["tool_calls"][0];
            if (tc.contains("id")) {
                ids[tc["index"]] = tc["id"];
            }
            args[tc["index"]] += tc["function"].value("arguments", "");
        }
        if (!c["choices"][0]["finish_reason"].is_null()) {
            finish = c["choices"][0]["finish_reason"];
        }
    }
    EXPECT_EQ(content, "Checking the weather in both cities \xc3\xa9\xe2\x9c\x93.");
    EXPECT_EQ(reasoning, "Two cities: call the tool twice.");
    EXPECT_NE(
        whole.out.find(
            R"("thinking_blocks":[{"signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h","thinking":"Two cities: call the tool twice.","type":"thinking"}])"),
        std::string::npos);
    EXPECT_EQ(ids[0], "toolu_01A");
    EXPECT_EQ(ids[1], "toolu_01B");
    EXPECT_EQ(Json::parse(args[0]), Json::parse(R"({"city":"Paris"})"));
    EXPECT_EQ(Json::parse(args[1]), Json::parse(R"({"city":"Oslo"})"));
    EXPECT_EQ(finish, "tool_calls");
    EXPECT_EQ(usage["prompt_tokens"], 125);
    EXPECT_EQ(usage["completion_tokens"], 87);
    EXPECT_EQ(usage["prompt_tokens_details"]["cached_tokens"], 100);
    EXPECT_EQ(whole.usage.prompt_tokens, 125);
    for (std::size_t split = 1; split < text.size(); ++split) {
        const StreamResult part = relay(text, true, split);
        ASSERT_EQ(part.out, whole.out) << "split at " << split;
        EXPECT_EQ(part.usage.completion_tokens, 87);
    }
    // Without include_usage: no usage chunk and no "usage" members, but still counted.
    const StreamResult quiet = relay(text, false, 0);
    EXPECT_EQ(quiet.out.find("\"usage\""), std::string::npos);
    EXPECT_EQ(quiet.usage.completion_tokens, 87);
}

TEST(AnthropicStream, ErrorInsideTheStreamBecomesAnErrorEvent) {
    const StreamResult r = relay(fixture("stream_error.sse"), false, 0);
    EXPECT_FALSE(r.finished);
    EXPECT_EQ(r.out.find("[DONE]"), std::string::npos);
    ASSERT_TRUE(r.error);  // the forwarder ends the client's stream with it
    EXPECT_EQ(
        r.error->to_json(),
        R"({"error":{"message":"Overloaded","type":"server_error","param":null,"code":"overloaded_error"}})");
    EXPECT_EQ(r.error->status, 529);
    EXPECT_NE(r.out.find(R"("content":"Hel")"), std::string::npos);
    const std::string text = fixture("stream_error.sse");
    for (std::size_t split = 1; split < text.size(); ++split) {
        ASSERT_EQ(relay(text, false, split).out, r.out) << split;
    }
}

TEST(AnthropicErrors, MapToOpenAiShape) {
    ProviderConfig pc;
    pc.name = "claude";
    pc.kind = "anthropic";
    pc.base_url = "https://api.anthropic.com";
    pc.api_key = "sk-ant-secret-000111222";
    AnthropicProvider p(pc);
    auto e =
        body_err(p, 529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})");
    EXPECT_EQ(e.status, 529);
    EXPECT_EQ(e.type, "server_error");
    EXPECT_EQ(e.code, "overloaded_error");
    e = body_err(p, 429, R"({"type":"error","error":{"type":"rate_limit_error","message":"slow"}})");
    EXPECT_EQ(e.type, "rate_limit_error");
    EXPECT_EQ(e.code, "rate_limit_exceeded");
    e = body_err(
        p, 400,
        R"({"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: required"}})");
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.type, "invalid_request_error");
    e = body_err(
        p, 401,
        R"({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-secret-000111222"}})");
    EXPECT_EQ(e.status, 502);
    EXPECT_EQ(e.message.find("sk-ant"), std::string::npos);
}

TEST(AnthropicProvider, BuildsTheMessagesRequest) {
    ProviderConfig pc;
    pc.name = "claude";
    pc.kind = "anthropic";
    pc.base_url = "https://api.anthropic.com/v1";
    pc.api_key = "k";
    AnthropicProvider p(pc);
    ApiRequest req;
    ASSERT_FALSE(
        parse_api_request(Endpoint::chat_completions,
                          R"({"model":"c","stream":true,"messages":[{"role":"user","content":"x"}]})", req));
    UpstreamRequest out;
    ASSERT_FALSE(p.build_request(req, "claude-sonnet-4-5", out));
    EXPECT_EQ(out.target, "/v1/messages");
    EXPECT_EQ(out.headers[0], (std::pair<std::string, std::string>{"x-api-key", "k"}));
    EXPECT_EQ(out.headers[1], (std::pair<std::string, std::string>{"anthropic-version", "2023-06-01"}));
    EXPECT_EQ(Json::parse(out.body)["model"], "claude-sonnet-4-5");
    ApiRequest emb;
    ASSERT_FALSE(parse_api_request(Endpoint::embeddings, R"({"model":"c","input":"x"})", emb));
    EXPECT_EQ(p.build_request(emb, "c", out)->code, "unsupported_endpoint");
}

}  // namespace
}  // namespace sluice
