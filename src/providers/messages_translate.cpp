#include "providers/messages_translate.hpp"

#include "providers/anthropic_provider.hpp"
#include "providers/translate_common.hpp"
#include "sse/sse.hpp"

namespace sluice {

using Json = nlohmann::json;

namespace {

std::int64_t int_of(const Json& j, const char* key) {
    return j.contains(key) && j[key].is_number_integer() ? j[key].get<std::int64_t>() : 0;
}

/// Anthropic content (string or blocks) → OpenAI parts; tool_result blocks are collected apart.
std::optional<GatewayError> to_parts(const Json& content, Json& parts, Json& tool_results,
                                     Json& tool_uses, std::string& text) {
    if (content.is_string()) {
        text += content.get<std::string>();
        parts.push_back({{"type", "text"}, {"text", content}});
        return std::nullopt;
    }
    if (!content.is_array()) {
        return GatewayError::bad_request("content must be a string or an array of blocks.",
                                         "invalid_parameter", "messages");
    }
    for (const auto& b : content) {
        const std::string type = b.value("type", "");
        if (type == "text") {
            text += b.value("text", "");
            parts.push_back({{"type", "text"}, {"text", b.value("text", "")}});
        } else if (type == "image") {
            const Json src = b.value("source", Json::object());
            std::string url;
            if (src.value("type", "") == "base64") {
                url = "data:" + src.value("media_type", "image/png") + ";base64," + src.value("data", "");
            } else if (src.value("type", "") == "url") {
                url = src.value("url", "");
            } else {
                return GatewayError::bad_request("Unsupported image source.", "invalid_parameter", "messages");
            }
            parts.push_back({{"type", "image_url"}, {"image_url", {{"url", url}}}});
        } else if (type == "tool_result") {
            tool_results.push_back(b);
        } else if (type == "tool_use") {
            tool_uses.push_back(b);
        } else if (type == "thinking" || type == "redacted_thinking") {
            continue;  // the other side has no way to accept prior thinking
        } else {
            return GatewayError::bad_request("Content blocks of type '" + type +
                                                 "' cannot be sent to this model.",
                                             "unsupported_content", "messages");
        }
    }
    return std::nullopt;
}

std::string tool_result_text(const Json& result) {
    return content_text(result.value("content", Json("")));
}

std::string stop_reason_for(const std::string& finish) {
    if (finish == "length") return "max_tokens";
    if (finish == "tool_calls" || finish == "function_call") return "tool_use";
    if (finish == "content_filter") return "refusal";
    return "end_turn";
}

void event(std::string& out, const char* name, const Json& data) {
    out += "event: ";
    out += name;
    out += "\ndata: ";
    out += data.dump();
    out += "\n\n";
}

}  // namespace

std::optional<GatewayError> messages_to_chat_request(const Json& in, std::string_view model, Json& out) {
    out = Json::object();
    out["model"] = model;
    Json messages = Json::array();
    if (in.contains("system")) {
        const Json& sys = in["system"];
        std::string text;
        if (sys.is_string()) {
            text = sys.get<std::string>();
        } else if (sys.is_array()) {
            for (const auto& b : sys) {
                text += text.empty() ? "" : "\n\n";
                text += b.value("text", "");
            }
        }
        if (!text.empty()) {
            messages.push_back({{"role", "system"}, {"content", text}});
        }
    }
    if (!in.contains("messages") || !in["messages"].is_array()) {
        return GatewayError::bad_request("messages: Field required", "invalid_parameter", "messages");
    }
    for (const auto& m : in["messages"]) {
        const std::string role = m.value("role", "");
        Json parts = Json::array();
        Json tool_results = Json::array();
        Json tool_uses = Json::array();
        std::string text;
        if (auto e = to_parts(m.value("content", Json("")), parts, tool_results, tool_uses, text)) {
            return e;
        }
        if (role == "user") {
            for (const auto& r : tool_results) {  // tool results come first, as OpenAI expects
                messages.push_back({{"role", "tool"},
                                    {"tool_call_id", r.value("tool_use_id", "")},
                                    {"content", tool_result_text(r)}});
            }
            if (!parts.empty()) {
                messages.push_back({{"role", "user"}, {"content", parts}});
            }
        } else if (role == "assistant") {
            Json msg = {{"role", "assistant"}, {"content", text.empty() ? Json(nullptr) : Json(text)}};
            if (!tool_uses.empty()) {
                Json calls = Json::array();
                for (const auto& t : tool_uses) {
                    calls.push_back({{"id", t.value("id", "")},
                                     {"type", "function"},
                                     {"function", {{"name", t.value("name", "")},
                                                   {"arguments", t.value("input", Json::object()).dump()}}}});
                }
                msg["tool_calls"] = std::move(calls);
            }
            messages.push_back(std::move(msg));
        } else {
            return GatewayError::bad_request("messages: role must be user or assistant.",
                                             "invalid_parameter", "messages");
        }
    }
    out["messages"] = std::move(messages);
    if (in.contains("max_tokens")) {
        out["max_tokens"] = in["max_tokens"];
    }
    if (in.contains("stop_sequences")) {
        out["stop"] = in["stop_sequences"];
    }
    for (const char* key : {"temperature", "top_p"}) {
        if (in.contains(key)) {
            out[key] = in[key];
        }
    }
    if (in.contains("metadata") && in["metadata"].contains("user_id")) {
        out["user"] = in["metadata"]["user_id"];
    }
    if (in.contains("tools") && in["tools"].is_array()) {
        Json tools = Json::array();
        for (const auto& t : in["tools"]) {
            if (!t.contains("input_schema")) {
                return GatewayError::bad_request("Server tools (" + t.value("type", t.value("name", "")) +
                                                     ") cannot be sent to this model.",
                                                 "unsupported_tool", "tools");
            }
            Json fn = {{"name", t.value("name", "")}, {"parameters", t["input_schema"]}};
            if (t.contains("description")) {
                fn["description"] = t["description"];
            }
            tools.push_back({{"type", "function"}, {"function", std::move(fn)}});
        }
        out["tools"] = std::move(tools);
    }
    if (in.contains("tool_choice") && in["tool_choice"].is_object()) {
        const Json& tc = in["tool_choice"];
        const std::string type = tc.value("type", "auto");
        if (type == "any") {
            out["tool_choice"] = "required";
        } else if (type == "none") {
            out["tool_choice"] = "none";
        } else if (type == "tool") {
            out["tool_choice"] = {{"type", "function"}, {"function", {{"name", tc.value("name", "")}}}};
        } else {
            out["tool_choice"] = "auto";
        }
        if (tc.value("disable_parallel_tool_use", false)) {
            out["parallel_tool_calls"] = false;
        }
    }
    if (in.value("stream", false)) {
        out["stream"] = true;
        out["stream_options"] = {{"include_usage", true}};
    }
    return std::nullopt;
}

Json chat_to_messages_response(const Json& chat, std::string_view model, Usage& usage) {
    Json content = Json::array();
    std::string finish = "stop";
    if (chat.contains("choices") && chat["choices"].is_array() && !chat["choices"].empty()) {
        const Json& choice = chat["choices"][0];
        finish = choice.value("finish_reason", Json("stop")).is_string() ? choice.value("finish_reason", "stop") : "stop";
        const Json msg = choice.value("message", Json::object());
        if (msg.contains("reasoning_content") && msg["reasoning_content"].is_string()) {
            content.push_back({{"type", "thinking"}, {"thinking", msg["reasoning_content"]}, {"signature", ""}});
        }
        if (msg.contains("content") && msg["content"].is_string() && !msg["content"].get<std::string>().empty()) {
            content.push_back({{"type", "text"}, {"text", msg["content"]}});
        }
        for (const auto& call : msg.value("tool_calls", Json::array())) {
            const Json fn = call.value("function", Json::object());
            Json input = Json::parse(fn.value("arguments", "{}"), nullptr, false);
            if (input.is_discarded() || !input.is_object()) {
                input = Json::object();
            }
            content.push_back({{"type", "tool_use"}, {"id", call.value("id", "")},
                               {"name", fn.value("name", "")}, {"input", std::move(input)}});
        }
    }
    const Json u = chat.value("usage", Json::object());
    const std::int64_t cached = u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object()
                                    ? int_of(u["prompt_tokens_details"], "cached_tokens")
                                    : 0;
    usage.prompt_tokens = int_of(u, "prompt_tokens");
    usage.completion_tokens = int_of(u, "completion_tokens");
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    std::string id = chat.value("id", "");
    return {{"id", id.rfind("msg_", 0) == 0 ? id : "msg_" + id},
            {"type", "message"},
            {"role", "assistant"},
            {"model", model},
            {"content", std::move(content)},
            {"stop_reason", stop_reason_for(finish)},
            {"stop_sequence", nullptr},
            {"usage", {{"input_tokens", usage.prompt_tokens - cached},
                       {"cache_read_input_tokens", cached},
                       {"cache_creation_input_tokens", 0},
                       {"output_tokens", usage.completion_tokens}}}};
}

std::string anthropic_error_json(const GatewayError& e) {
    std::string type = "api_error";
    switch (e.status) {
        case 400: case 405: case 408: case 414: case 415: case 431: type = "invalid_request_error"; break;
        case 401: type = "authentication_error"; break;
        case 403: type = "permission_error"; break;
        case 404: type = "not_found_error"; break;
        case 413: type = "request_too_large"; break;
        case 429: type = "rate_limit_error"; break;
        case 503: case 529: type = "overloaded_error"; break;
        default: break;
    }
    return Json{{"type", "error"}, {"error", {{"type", type}, {"message", e.message}}}}.dump();
}

void ChatToMessagesStream::start(const Json& chunk, std::string& out) {
    started_ = true;
    std::string id = chunk.value("id", "");
    event(out, "message_start",
          {{"type", "message_start"},
           {"message", {{"id", id.rfind("msg_", 0) == 0 ? id : "msg_" + id},
                        {"type", "message"},
                        {"role", "assistant"},
                        {"model", model_},
                        {"content", Json::array()},
                        {"stop_reason", nullptr},
                        {"stop_sequence", nullptr},
                        {"usage", {{"input_tokens", 0}, {"output_tokens", 0}}}}}});
}

void ChatToMessagesStream::close_block(std::string& out) {
    if (block_ != Block::none) {
        event(out, "content_block_stop", {{"type", "content_block_stop"}, {"index", block_index_}});
        block_ = Block::none;
        current_tool_ = -1;
    }
}

void ChatToMessagesStream::open(Block kind, const Json& content_block, std::string& out) {
    close_block(out);
    block_ = kind;
    ++block_index_;
    event(out, "content_block_start",
          {{"type", "content_block_start"}, {"index", block_index_}, {"content_block", content_block}});
}

void ChatToMessagesStream::on_event(const sse::Event& ev, std::string& out) {
    if (ev.comment_only) {
        return;
    }
    if (ev.data == "[DONE]") {
        if (!started_) {
            start(Json::object(), out);
        }
        close_block(out);
        event(out, "message_delta",
              {{"type", "message_delta"},
               {"delta", {{"stop_reason", stop_reason_}, {"stop_sequence", nullptr}}},
               {"usage", {{"input_tokens", std::max<std::int64_t>(0, usage_.prompt_tokens - cached_)},
                          {"cache_read_input_tokens", cached_},
                          {"output_tokens", std::max<std::int64_t>(0, usage_.completion_tokens)}}}});
        event(out, "message_stop", {{"type", "message_stop"}});
        done_ = true;
        return;
    }
    const Json chunk = Json::parse(ev.data, nullptr, false);
    if (chunk.is_discarded() || !chunk.is_object()) {
        return;
    }
    if (chunk.contains("error")) {
        GatewayError e;
        e.status = 500;
        e.message = chunk["error"].value("message", "The provider reported an error mid-stream.");
        event(out, "error", Json::parse(anthropic_error_json(e)));
        return;
    }
    if (!started_) {
        start(chunk, out);
    }
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
        const Json& u = chunk["usage"];
        usage_.prompt_tokens = int_of(u, "prompt_tokens");
        usage_.completion_tokens = int_of(u, "completion_tokens");
        usage_.total_tokens = usage_.prompt_tokens + usage_.completion_tokens;
        if (u.contains("prompt_tokens_details") && u["prompt_tokens_details"].is_object()) {
            cached_ = int_of(u["prompt_tokens_details"], "cached_tokens");
        }
    }
    if (!chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty()) {
        return;
    }
    const Json& choice = chunk["choices"][0];
    const Json delta = choice.value("delta", Json::object());
    if (delta.contains("reasoning_content") && delta["reasoning_content"].is_string() &&
        !delta["reasoning_content"].get<std::string>().empty()) {
        if (block_ != Block::thinking) {
            open(Block::thinking, {{"type", "thinking"}, {"thinking", ""}}, out);
        }
        event(out, "content_block_delta",
              {{"type", "content_block_delta"}, {"index", block_index_},
               {"delta", {{"type", "thinking_delta"}, {"thinking", delta["reasoning_content"]}}}});
    }
    if (delta.contains("content") && delta["content"].is_string() &&
        !delta["content"].get<std::string>().empty()) {
        if (block_ != Block::text) {
            open(Block::text, {{"type", "text"}, {"text", ""}}, out);
        }
        event(out, "content_block_delta",
              {{"type", "content_block_delta"}, {"index", block_index_},
               {"delta", {{"type", "text_delta"}, {"text", delta["content"]}}}});
    }
    for (const auto& call : delta.value("tool_calls", Json::array())) {
        const int index = call.value("index", 0);
        const Json fn = call.value("function", Json::object());
        if (block_ != Block::tool || index != current_tool_) {
            // A new tool call (Anthropic blocks are sequential; OpenAI streams them in order).
            open(Block::tool, {{"type", "tool_use"}, {"id", call.value("id", "")},
                               {"name", fn.value("name", "")}, {"input", Json::object()}},
                 out);
            current_tool_ = index;
        }
        const std::string args = fn.value("arguments", "");
        if (!args.empty()) {
            event(out, "content_block_delta",
                  {{"type", "content_block_delta"}, {"index", block_index_},
                   {"delta", {{"type", "input_json_delta"}, {"partial_json", args}}}});
        }
    }
    if (choice.contains("finish_reason") && choice["finish_reason"].is_string()) {
        stop_reason_ = stop_reason_for(choice["finish_reason"]);
    }
}

void ChainedMessagesStream::pass(std::string& out) {
    decoder_.feed(chat_, [this, &out](const sse::Event& e) { outer_.on_event(e, out); });
    chat_.clear();
}

void ChainedMessagesStream::on_event(const sse::Event& ev, std::string& out) {
    inner_->on_event(ev, chat_);
    pass(out);
}

bool ChainedMessagesStream::on_bytes(std::string_view bytes, std::string& out) {
    const bool ok = inner_->on_bytes(bytes, chat_);
    pass(out);
    return ok;
}

void ChainedMessagesStream::on_end(std::string& out) {
    inner_->on_end(chat_);
    pass(out);
    outer_.on_end(out);
}

void MessagesPassthroughStream::on_event(const sse::Event& ev, std::string& out) {
    sse::encode(ev, out);
    // Only the two events that carry usage are parsed; deltas pass without a look.
    if (ev.event == "message_start" || ev.event == "message_delta") {
        const Json data = Json::parse(ev.data, nullptr, false);
        if (data.is_discarded()) {
            return;
        }
        const Json u = ev.event == "message_start"
                           ? data.value("message", Json::object()).value("usage", Json::object())
                           : data.value("usage", Json::object());
        if (u.contains("input_tokens")) {
            input_ = int_of(u, "input_tokens");
        }
        if (u.contains("cache_read_input_tokens")) {
            cache_read_ = int_of(u, "cache_read_input_tokens");
        }
        if (u.contains("cache_creation_input_tokens")) {
            cache_write_ = int_of(u, "cache_creation_input_tokens");
        }
        if (u.contains("output_tokens")) {
            usage_.completion_tokens = int_of(u, "output_tokens");
        }
        usage_.prompt_tokens = input_ + cache_read_ + cache_write_;
        usage_.total_tokens = usage_.prompt_tokens + std::max<std::int64_t>(0, usage_.completion_tokens);
    } else if (ev.event == "message_stop") {
        done_ = true;
    }
}

}  // namespace sluice
