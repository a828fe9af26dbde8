#include "mock_anthropic.hpp"

#include <set>

#include <nlohmann/json.hpp>

#include "providers/messages_translate.hpp"

namespace sluice::test {

using Json = nlohmann::json;

namespace {

LocalResponse error(int status, const std::string& type, const std::string& message) {
    LocalResponse r;
    r.status = status;
    r.body = Json{{"type", "error"}, {"error", {{"type", type}, {"message", message}}}}.dump();
    return r;
}

std::int64_t words(const std::string& s) {
    std::int64_t n = 0;
    bool in = false;
    for (const char c : s) {
        const bool space = c == ' ' || c == '\n' || c == '\t';
        n += (!space && !in) ? 1 : 0;
        in = !space;
    }
    return n;
}

void event(std::string& out, const char* name, const Json& data) {
    out += "event: ";
    out += name;
    out += "\ndata: ";
    out += data.dump();
    out += "\n\n";
}

}  // namespace

LocalResponse anthropic_generate(std::string_view body) {
    const Json req = Json::parse(body, nullptr, false);
    if (req.is_discarded() || !req.is_object()) {
        return error(400, "invalid_request_error", "invalid JSON");
    }
    static const std::set<std::string> kKnown = {
        "model",       "messages",     "max_tokens",    "system",    "stop_sequences", "stream",
        "temperature", "top_p",        "top_k",         "tools",     "tool_choice",    "metadata",
        "thinking",    "service_tier", "output_config", "container", "mcp_servers",    "context_management"};
    for (const auto& [k, v] : req.items()) {
        if (!kKnown.count(k)) {
            return error(400, "invalid_request_error", k + ": Extra inputs are not permitted");
        }
    }
    if (!req.contains("max_tokens")) {
        return error(400, "invalid_request_error", "max_tokens: Field required");
    }
    {
        // Like the real API, wrong types anywhere are a 400 (checked with sluice's own reader
        // of the Messages schema: what it accepts, Anthropic accepts).
        Json chat;
        if (auto bad = messages_to_chat_request(req, "mock", chat, true)) {
            return error(400, "invalid_request_error", bad->message);
        }
    }
    const Json messages = req.value("messages", Json::array());
    if (messages.empty() || messages[0].value("role", "") != "user") {
        return error(400, "invalid_request_error", "messages: first message must use the user role");
    }
    std::string last_user;
    std::string last_role;
    bool last_is_tool_result = false;
    std::int64_t input_tokens = 0;
    for (std::size_t i = 0; i < messages.size(); ++i) {
        const Json& m = messages[i];
        if (i > 0 && m.value("role", "") == messages[i - 1].value("role", "")) {
            return error(400, "invalid_request_error", "roles must alternate between user and assistant");
        }
        last_role = m.value("role", "");
        last_is_tool_result = false;
        const Json& c = m["content"];
        std::string text;
        if (c.is_string()) {
            text = c.get<std::string>();
        } else {
            for (const auto& b : c) {
                if (b.value("type", "") == "text") {
                    text += b.value("text", "");
                }
                last_is_tool_result = last_is_tool_result || b.value("type", "") == "tool_result";
            }
        }
        input_tokens += words(text) + 3;
        if (last_role == "user" && !last_is_tool_result) {
            last_user = text;
        }
    }
    const std::string model = req.value("model", "claude");
    const bool use_tool = req.contains("tools") && !req["tools"].empty() && !last_is_tool_result &&
                          req.value("tool_choice", Json::object()).value("type", "auto") != "none";
    Json block;
    std::string stop_reason = "end_turn";
    std::string text;
    std::string args;
    if (use_tool) {
        const Json& tool = req["tools"][0];
        args = mock_tool_arguments(tool.value("input_schema", Json::object()).dump());
        block = {{"type", "tool_use"},
                 {"id", "toolu_mock_01"},
                 {"name", tool.value("name", "tool")},
                 {"input", Json::parse(args)}};
        stop_reason = "tool_use";
    } else {
        // The whole message is echoed word by word, so a benchmark can size the stream.
        text = "This is a mock answer from sluice. You said: " + last_user.substr(0, 4000);
        block = {{"type", "text"}, {"text", text}};
    }
    const std::int64_t output_tokens = use_tool ? words(args) + 5 : words(text);
    const Json usage = {{"input_tokens", input_tokens},
                        {"cache_creation_input_tokens", 0},
                        {"cache_read_input_tokens", 0},
                        {"output_tokens", output_tokens}};
    LocalResponse r;
    if (!req.value("stream", false)) {
        r.body = Json{
            {"id", "msg_mock_01"},
            {"type", "message"},
            {"role", "assistant"},
            {"model", model},
            {"content", Json::array({block})},
            {"stop_reason", stop_reason},
            {"stop_sequence", nullptr},
            {"usage",
             usage}}.dump();
        return r;
    }
    r.content_type = "text/event-stream";
    Json start_usage = usage;
    start_usage["output_tokens"] = 1;
    event(r.body, "message_start",
          {{"type", "message_start"},
           {"message",
            {{"id", "msg_mock_01"},
             {"type", "message"},
             {"role", "assistant"},
             {"model", model},
             {"content", Json::array()},
             {"stop_reason", nullptr},
             {"stop_sequence", nullptr},
             {"usage", start_usage}}}});
    if (use_tool) {
        Json start = block;
        start["input"] = Json::object();
        event(r.body, "content_block_start",
              {{"type", "content_block_start"}, {"index", 0}, {"content_block", start}});
        for (std::size_t i = 0; i < args.size(); i += 5) {
            event(r.body, "content_block_delta",
                  {{"type", "content_block_delta"},
                   {"index", 0},
                   {"delta", {{"type", "input_json_delta"}, {"partial_json", args.substr(i, 5)}}}});
        }
    } else {
        event(r.body, "content_block_start",
              {{"type", "content_block_start"},
               {"index", 0},
               {"content_block", {{"type", "text"}, {"text", ""}}}});
        event(r.body, "ping", {{"type", "ping"}});
        std::size_t pos = 0;
        while (pos < text.size()) {
            auto sp = text.find(' ', pos);
            sp = sp == std::string::npos ? text.size() : sp + 1;
            event(r.body, "content_block_delta",
                  {{"type", "content_block_delta"},
                   {"index", 0},
                   {"delta", {{"type", "text_delta"}, {"text", text.substr(pos, sp - pos)}}}});
            pos = sp;
        }
    }
    event(r.body, "content_block_stop", {{"type", "content_block_stop"}, {"index", 0}});
    event(r.body, "message_delta",
          {{"type", "message_delta"},
           {"delta", {{"stop_reason", stop_reason}, {"stop_sequence", nullptr}}},
           {"usage", {{"output_tokens", output_tokens}}}});
    event(r.body, "message_stop", {{"type", "message_stop"}});
    return r;
}

}  // namespace sluice::test
