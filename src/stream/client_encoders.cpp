#include "stream/client_encoders.hpp"

#include <algorithm>

#include "json/json_dom.hpp"
#include "providers/configured_provider.hpp"

namespace sluice {

using Json = nlohmann::json;
using json::Reader;
using json::Type;
using Kind = StreamDelta::Kind;

namespace {

void write_data(std::string& out, const Json& data) {
    out += "data: ";
    json::append_text(out, data);
    out += "\n\n";
}

void write_event(std::string& out, const char* name, const Json& data) {
    out += "event: ";
    out += name;
    out += "\ndata: ";
    json::append_text(out, data);
    out += "\n\n";
}

}  // namespace

std::string anthropic_stop_reason(std::string_view finish) {
    if (finish == "length") {
        return "max_tokens";
    }
    if (finish == "tool_calls" || finish == "function_call") {
        return "tool_use";
    }
    if (finish == "content_filter") {
        return "refusal";
    }
    return "end_turn";
}

// ---- OpenAI chunks out ------------------------------------------------------------------------

void OpenAiChunkEncoder::chunk(int choice, Json delta, const Json& finish, std::string& out) const {
    Json c = {{"id", id_},
              {"object", "chat.completion.chunk"},
              {"created", created_},
              {"model", model_},
              {"choices", Json::array({{{"index", choice},
                                        {"delta", std::move(delta)},
                                        {"logprobs", nullptr},
                                        {"finish_reason", finish}}})}};
    if (client_wants_usage_) {
        c["usage"] = nullptr;
    }
    write_data(out, c);
}

bool OpenAiChunkEncoder::on_delta(StreamDelta&& d, std::string& out) {
    switch (d.kind) {
        case Kind::start:
            id_ = std::move(d.id);
            model_ = std::move(d.name);
            created_ = d.created;
            chunk(d.choice, {{"role", "assistant"}, {"content", ""}}, nullptr, out);
            break;
        case Kind::text: chunk(d.choice, {{"content", std::move(d.text)}}, nullptr, out); break;
        case Kind::reasoning:
            chunk(d.choice, {{"reasoning_content", std::move(d.text)}}, nullptr, out);
            break;
        case Kind::reasoning_block: {
            Json block;
            if (!json::parse_untrusted(d.text, block) || !block.is_object()) {
                return fail(GatewayError::internal("A reasoning block in the stream is not a JSON object."));
            }
            chunk(d.choice, {{"thinking_blocks", Json::array({std::move(block)})}}, nullptr, out);
            break;
        }
        case Kind::tool_call: {
            Json call = {{"index", d.tool},
                         {"id", std::move(d.id)},
                         {"type", "function"},
                         {"function", {{"name", std::move(d.name)}, {"arguments", std::move(d.text)}}}};
            if (!d.extra_content.empty()) {
                Json extra;
                if (!json::parse_untrusted(d.extra_content, extra)) {
                    return fail(GatewayError::internal("A tool call's extra_content is not JSON."));
                }
                call["extra_content"] = std::move(extra);
            }
            chunk(d.choice, {{"tool_calls", Json::array({std::move(call)})}}, nullptr, out);
            break;
        }
        case Kind::tool_args:
            chunk(d.choice,
                  {{"tool_calls",
                    Json::array({{{"index", d.tool}, {"function", {{"arguments", std::move(d.text)}}}}})}},
                  nullptr, out);
            break;
        case Kind::finish: chunk(d.choice, Json::object(), Json(d.finish_reason), out); break;
        case Kind::usage:
            if (client_wants_usage_) {
                Json u = {{"prompt_tokens", d.usage.prompt_tokens},
                          {"completion_tokens", d.usage.completion_tokens},
                          {"total_tokens", d.usage.total_tokens},
                          {"prompt_tokens_details", {{"cached_tokens", d.cached_tokens}}}};
                if (d.reasoning_tokens >= 0) {
                    u["completion_tokens_details"] = {{"reasoning_tokens", d.reasoning_tokens}};
                }
                write_data(out, {{"id", id_},
                                 {"object", "chat.completion.chunk"},
                                 {"created", created_},
                                 {"model", model_},
                                 {"choices", Json::array()},
                                 {"usage", std::move(u)}});
            }
            break;
        case Kind::ping: out += ": ping\n\n"; break;  // SDKs ignore comments
    }
    return true;
}

bool OpenAiChunkEncoder::on_end(std::string& out) {
    sse::encode_data("[DONE]", out);
    return true;
}

// ---- Anthropic events out ---------------------------------------------------------------------

void AnthropicEventEncoder::start(std::string_view id, std::string& out) {
    started_ = true;
    const std::string msg_id = id.rfind("msg_", 0) == 0 ? std::string(id) : "msg_" + std::string(id);
    write_event(out, "message_start",
                {{"type", "message_start"},
                 {"message",
                  {{"id", msg_id},
                   {"type", "message"},
                   {"role", "assistant"},
                   {"model", model_},
                   {"content", Json::array()},
                   {"stop_reason", nullptr},
                   {"stop_sequence", nullptr},
                   {"usage", {{"input_tokens", 0}, {"output_tokens", 0}}}}}});
}

void AnthropicEventEncoder::close_block(std::string& out) {
    if (block_ != Block::none) {
        write_event(out, "content_block_stop", {{"type", "content_block_stop"}, {"index", block_index_}});
        block_ = Block::none;
        current_tool_ = -1;
    }
}

void AnthropicEventEncoder::open(Block kind, const Json& content_block, std::string& out) {
    close_block(out);
    block_ = kind;
    ++block_index_;
    write_event(out, "content_block_start",
                {{"type", "content_block_start"}, {"index", block_index_}, {"content_block", content_block}});
}

void AnthropicEventEncoder::open_tool(int tool, std::string& out) {
    // Anthropic blocks are sequential; OpenAI streams a call's pieces in order.
    const auto it = tools_.find(tool);
    open(Block::tool,
         {{"type", "tool_use"},
          {"id", it != tools_.end() ? it->second.first : std::string()},
          {"name", it != tools_.end() ? it->second.second : std::string()},
          {"input", Json::object()}},
         out);
    current_tool_ = tool;
}

bool AnthropicEventEncoder::on_delta(StreamDelta&& d, std::string& out) {
    if (d.choice != 0) {
        return true;  // Messages answers have one choice
    }
    if (!started_ && d.kind != Kind::ping) {
        start(d.kind == Kind::start ? std::string_view(d.id) : std::string_view(), out);
    }
    const auto content_delta = [&](const char* type, const char* key, std::string text) {
        write_event(out, "content_block_delta",
                    {{"type", "content_block_delta"},
                     {"index", block_index_},
                     {"delta", {{"type", type}, {key, std::move(text)}}}});
    };
    switch (d.kind) {
        case Kind::start: break;
        case Kind::text:
            if (!d.text.empty()) {
                if (block_ != Block::text) {
                    open(Block::text, {{"type", "text"}, {"text", ""}}, out);
                }
                content_delta("text_delta", "text", std::move(d.text));
            }
            break;
        case Kind::reasoning:
            if (!d.text.empty()) {
                if (block_ != Block::thinking) {
                    open(Block::thinking, {{"type", "thinking"}, {"thinking", ""}}, out);
                }
                content_delta("thinking_delta", "thinking", std::move(d.text));
            }
            break;
        case Kind::reasoning_block: break;  // the thinking text went out as it came
        case Kind::tool_call:
            if (tools_.size() < OpenAiChunkDecoder::kMaxToolCalls) {
                tools_[d.tool] = {std::move(d.id), std::move(d.name)};
            }
            open_tool(d.tool, out);
            if (!d.text.empty()) {
                content_delta("input_json_delta", "partial_json", std::move(d.text));
            }
            break;
        case Kind::tool_args:
            if (block_ != Block::tool || current_tool_ != d.tool) {
                open_tool(d.tool, out);
            }
            if (!d.text.empty()) {
                content_delta("input_json_delta", "partial_json", std::move(d.text));
            }
            break;
        case Kind::finish: stop_reason_ = anthropic_stop_reason(d.finish_reason); break;
        case Kind::usage:
            usage_ = d.usage;
            cached_ = d.cached_tokens;
            break;
        case Kind::ping: write_event(out, "ping", {{"type", "ping"}}); break;
    }
    return true;
}

bool AnthropicEventEncoder::on_end(std::string& out) {
    if (!started_) {
        start({}, out);
    }
    close_block(out);
    write_event(out, "message_delta",
                {{"type", "message_delta"},
                 {"delta", {{"stop_reason", stop_reason_}, {"stop_sequence", nullptr}}},
                 {"usage",
                  {{"input_tokens", std::max<std::int64_t>(0, usage_.prompt_tokens - cached_)},
                   {"cache_read_input_tokens", cached_},
                   {"output_tokens", std::max<std::int64_t>(0, usage_.completion_tokens)}}}});
    write_event(out, "message_stop", {{"type", "message_stop"}});
    return true;
}

std::string openai_finish_reason(std::string_view stop_reason) {
    if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
        return "length";
    }
    if (stop_reason == "tool_use") {
        return "tool_calls";
    }
    if (stop_reason == "refusal") {
        return "content_filter";
    }
    return "stop";  // end_turn, stop_sequence, pause_turn
}

std::unique_ptr<DeltaSink> make_client_encoder(const ApiRequest& req) {
    if (req.endpoint == Endpoint::messages) {
        return std::make_unique<AnthropicEventEncoder>(req.model);
    }
    return std::make_unique<OpenAiChunkEncoder>(req.client_wants_usage);
}

// ---- OpenAI chunks in -------------------------------------------------------------------------

void read_chat_usage(Reader& r, const Json& u, Usage& usage, std::int64_t& cached, std::int64_t* reasoning) {
    if (!r.expect(u, Type::object)) {
        return;
    }
    for (const auto& [key, slot] : {std::pair{"prompt_tokens", &usage.prompt_tokens},
                                    std::pair{"completion_tokens", &usage.completion_tokens}}) {
        if (const auto v = r.integer(u, key)) {
            if (*v < 0) {
                r.fail(key, "token counts are never negative.");
            }
            *slot = *v;
        }
    }
    if (const Json* details = r.object(u, "prompt_tokens_details")) {
        auto in_details = r.at("prompt_tokens_details");
        if (const auto c = r.integer(*details, "cached_tokens")) {
            cached = *c;
        }
    }
    if (reasoning == nullptr) {
        return;
    }
    if (const Json* details = r.object(u, "completion_tokens_details")) {
        auto in_details = r.at("completion_tokens_details");
        if (const auto c = r.integer(*details, "reasoning_tokens")) {
            *reasoning = *c;
        }
    }
}

bool OpenAiChunkDecoder::on_event(const sse::Event& ev, std::string& out) {
    if (ev.comment_only || !ev.has_data) {
        return true;
    }
    if (ev.data == "[DONE]") {
        if (!started_) {
            started_ = true;
            push(StreamDelta::of(Kind::start), out);
        }
        done_ = true;
        return push_end(out) || sink_failure();
    }
    Json chunk;
    if (!json::parse_untrusted(ev.data, chunk) || !chunk.is_object()) {
        return fail_invalid("a chunk that is not a JSON object");
    }
    if (const Json* err = json::find(chunk, "error"); err != nullptr && err->is_object()) {
        GatewayError e = error_from_json_body(502, ev.data);
        if (e.type.empty()) {
            e.type = "server_error";
        }
        return fail(std::move(e));
    }
    Reader r(Reader::Side::provider);
    handle(r, chunk, out);
    if (r.failed()) {
        return fail_invalid(r.error_message());
    }
    return !sink_stopped() || sink_failure();
}

void OpenAiChunkDecoder::handle(Reader& r, const Json& chunk, std::string& out) {
    if (!started_) {
        started_ = true;
        StreamDelta d = StreamDelta::of(Kind::start);
        if (const std::string* id = r.string(chunk, "id")) {
            d.id = *id;
        }
        if (const std::string* model = r.string(chunk, "model")) {
            d.name = *model;
        }
        d.created = r.integer(chunk, "created").value_or(0);
        push(std::move(d), out);
    }
    if (const Json* u = r.object(chunk, "usage")) {
        auto in_usage = r.at("usage");
        StreamDelta d = StreamDelta::of(Kind::usage);
        d.usage = Usage{0, 0, 0};
        read_chat_usage(r, *u, d.usage, d.cached_tokens, &d.reasoning_tokens);
        d.usage.total_tokens = d.usage.prompt_tokens + d.usage.completion_tokens;
        usage_ = d.usage;
        if (r.ok()) {
            push(std::move(d), out);
        }
    }
    const Json* choices = r.array(chunk, "choices");
    if (choices == nullptr) {
        return;
    }
    auto in_choices = r.at("choices");
    for (std::size_t i = 0; i < choices->size() && r.ok() && !sink_stopped(); ++i) {
        auto in_choice = r.at(i);
        handle_choice(r, (*choices)[i], out);
    }
}

void OpenAiChunkDecoder::handle_choice(Reader& r, const Json& choice, std::string& out) {
    if (!r.expect(choice, Type::object)) {
        return;
    }
    const auto index = r.integer(choice, "index").value_or(0);
    if (index < 0 || index > 127) {
        r.fail("index", "choice indexes run from 0 to 127.");
        return;
    }
    const int c = static_cast<int>(index);
    if (const Json* delta = r.object(choice, "delta")) {
        auto in_delta = r.at("delta");
        for (const auto& [key, kind] :
             {std::pair{"reasoning_content", Kind::reasoning}, std::pair{"content", Kind::text}}) {
            if (const std::string* text = r.string(*delta, key); text != nullptr && !text->empty()) {
                StreamDelta d = StreamDelta::of(kind, *text);
                d.choice = c;
                push(std::move(d), out);
            }
        }
        if (const Json* calls = r.array(*delta, "tool_calls")) {
            auto in_calls = r.at("tool_calls");
            handle_tool_calls(r, c, *calls, out);
        }
    }
    if (const std::string* finish = r.string(choice, "finish_reason")) {
        StreamDelta d = StreamDelta::of(Kind::finish);
        d.choice = c;
        d.finish_reason = *finish;
        push(std::move(d), out);
    }
}

void OpenAiChunkDecoder::handle_tool_calls(Reader& r, int choice, const Json& calls, std::string& out) {
    for (std::size_t i = 0; i < calls.size() && r.ok(); ++i) {
        auto in_call = r.at(i);
        const Json& call = calls[i];
        if (!r.expect(call, Type::object)) {
            return;
        }
        const std::int64_t index = r.integer(call, "index").value_or(0);
        const Json* fn = r.object(call, "function");
        const std::string* call_id = r.string(call, "id");
        const std::string* name = fn != nullptr ? r.string(*fn, "name") : nullptr;
        const std::string* args = fn != nullptr ? r.string(*fn, "arguments") : nullptr;
        if (r.failed()) {
            return;
        }
        if (index < 0 || index >= static_cast<std::int64_t>(kMaxToolCalls)) {
            r.fail("index", "tool call indexes run from 0 to " + std::to_string(kMaxToolCalls - 1) + ".");
            return;
        }
        if (tools_seen_.insert({choice, index}).second) {
            StreamDelta d = StreamDelta::of(Kind::tool_call);
            d.choice = choice;
            d.tool = static_cast<int>(index);
            d.id = call_id != nullptr ? *call_id : std::string();
            d.name = name != nullptr ? *name : std::string();
            push(std::move(d), out);
        }
        if (args != nullptr && !args->empty()) {
            StreamDelta d = StreamDelta::of(Kind::tool_args, *args);
            d.choice = choice;
            d.tool = static_cast<int>(index);
            push(std::move(d), out);
        }
    }
}

}  // namespace sluice
