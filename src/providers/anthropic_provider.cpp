#include "providers/anthropic_provider.hpp"

#include <algorithm>
#include <ctime>

#include "providers/messages_translate.hpp"
#include "providers/translate_common.hpp"
#include "sse/sse.hpp"

namespace sluice {

using Json = nlohmann::json;

namespace {

constexpr const char* kAnthropicVersion = "2023-06-01";

/// An OpenAI image_url part → an Anthropic image block (base64 from a data: URL, else a URL
/// source). Unknown keys of the part (cache_control, ...) are kept.
std::optional<Json> image_block(const Json& part) {
    const Json& image = part.value("image_url", Json::object());
    const std::string url = image.is_string() ? image.get<std::string>() : image.value("url", "");
    Json block = {{"type", "image"}};
    if (url.rfind("data:", 0) == 0) {
        const auto semi = url.find(';');
        const auto comma = url.find(',');
        if (semi == std::string::npos || comma == std::string::npos || semi > comma ||
            url.compare(semi, 8, ";base64,") != 0) {
            return std::nullopt;
        }
        block["source"] = {{"type", "base64"},
                           {"media_type", url.substr(5, semi - 5)},
                           {"data", url.substr(comma + 1)}};
    } else if (url.rfind("https://", 0) == 0 || url.rfind("http://", 0) == 0) {
        block["source"] = {{"type", "url"}, {"url", url}};
    } else {
        return std::nullopt;
    }
    for (const auto& [k, v] : part.items()) {
        if (k != "type" && k != "image_url") {
            block[k] = v;
        }
    }
    return block;
}

/// OpenAI content (string or parts) → Anthropic content blocks.
std::optional<GatewayError> content_blocks(const Json& content, Json& blocks) {
    if (content.is_null()) {
        return std::nullopt;
    }
    if (content.is_string()) {
        if (!content.get<std::string>().empty()) {
            blocks.push_back({{"type", "text"}, {"text", content}});
        }
        return std::nullopt;
    }
    if (!content.is_array()) {
        return GatewayError::bad_request("Message content must be a string or an array of parts.",
                                         "invalid_parameter", "messages");
    }
    for (const auto& part : content) {
        const std::string type = part.is_object() ? part.value("type", "") : "";
        if (type == "text") {
            blocks.push_back(part);  // same shape in both APIs; cache_control and the rest kept
        } else if (type == "refusal") {
            blocks.push_back({{"type", "text"}, {"text", part.value("refusal", "")}});
        } else if (type == "image_url") {
            auto block = image_block(part);
            if (!block) {
                return GatewayError::bad_request(
                    "image_url must be an https URL or a base64 data: URL.", "invalid_parameter",
                    "messages");
            }
            blocks.push_back(std::move(*block));
        } else if (type == "input_audio") {
            return GatewayError::bad_request("Audio input is not supported by Anthropic models.",
                                             "unsupported_content", "messages");
        } else {
            blocks.push_back(part);  // Anthropic-native blocks (document, ...) pass through
        }
    }
    return std::nullopt;
}

std::string finish_reason(const std::string& stop_reason) {
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

Json openai_usage(const Usage& u, std::int64_t cached) {
    Json j = {{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens}};
    j["prompt_tokens_details"] = {{"cached_tokens", cached}};
    return j;
}

std::int64_t int_field(const Json& j, const char* key) {
    return j.contains(key) && j[key].is_number_integer() ? j[key].get<std::int64_t>() : 0;
}

}  // namespace

Usage anthropic_usage(const Json& u) {
    Usage out;
    const std::int64_t input = int_field(u, "input_tokens");
    const std::int64_t read = int_field(u, "cache_read_input_tokens");
    const std::int64_t write = int_field(u, "cache_creation_input_tokens");
    out.prompt_tokens = input + read + write;
    out.completion_tokens = int_field(u, "output_tokens");
    out.total_tokens = out.prompt_tokens + out.completion_tokens;
    return out;
}

std::optional<GatewayError> openai_to_anthropic(const Json& in, std::string_view model,
                                                int default_max_tokens, Json& out) {
    out = Json::object();
    out["model"] = model;
    if (in.contains("n") && in["n"].is_number_integer() && in["n"].get<int>() != 1) {
        return GatewayError::bad_request("Anthropic models return one choice: n must be 1.",
                                         "invalid_parameter", "n");
    }
    std::int64_t max_tokens = default_max_tokens;
    for (const char* key : {"max_tokens", "max_completion_tokens"}) {
        if (in.contains(key) && in[key].is_number_integer()) {
            max_tokens = in[key].get<std::int64_t>();
        }
    }
    Json system = Json::array();
    Json messages = Json::array();
    if (!in.contains("messages") || !in["messages"].is_array()) {
        return GatewayError::bad_request("messages must be an array.", "invalid_parameter", "messages");
    }
    for (const auto& m : in["messages"]) {
        if (!m.is_object()) {
            return GatewayError::bad_request("Each message must be an object.", "invalid_parameter",
                                             "messages");
        }
        const std::string role = m.value("role", "");
        Json blocks = Json::array();
        if (role == "system" || role == "developer") {
            if (auto e = content_blocks(m.value("content", Json()), blocks)) {
                return e;
            }
            for (auto& b : blocks) {
                system.push_back(std::move(b));
            }
        } else if (role == "user") {
            if (auto e = content_blocks(m.value("content", Json()), blocks)) {
                return e;
            }
            append_turn(messages, "user", std::move(blocks));
        } else if (role == "assistant") {
            // Thinking blocks sluice returned earlier (with their signatures) go back first, as
            // Anthropic requires when a turn continues after thinking and tool use.
            for (const auto& tb : m.value("thinking_blocks", Json::array())) {
                if (tb.is_object() && (tb.value("type", "") == "thinking" || tb.value("type", "") == "redacted_thinking")) {
                    blocks.push_back(tb);
                }
            }
            if (auto e = content_blocks(m.value("content", Json()), blocks)) {
                return e;
            }
            for (const auto& call : m.value("tool_calls", Json::array())) {
                const Json fn = call.value("function", Json::object());
                Json input;
                if (auto e = tool_call_input(call, "Anthropic", input)) {
                    return e;
                }
                blocks.push_back({{"type", "tool_use"},
                                  {"id", call.value("id", "")},
                                  {"name", fn.value("name", "")},
                                  {"input", std::move(input)}});
            }
            append_turn(messages, "assistant", std::move(blocks));
        } else if (role == "tool") {
            Json result = {{"type", "tool_result"}, {"tool_use_id", m.value("tool_call_id", "")}};
            const Json content = m.value("content", Json(""));
            if (content.is_array()) {
                Json inner = Json::array();
                if (auto e = content_blocks(content, inner)) {
                    return e;
                }
                result["content"] = std::move(inner);
            } else {
                result["content"] = content;
            }
            append_turn(messages, "user", Json::array({std::move(result)}));
        } else {
            return GatewayError::bad_request("Unsupported message role '" + role + "'.",
                                             "invalid_parameter", "messages");
        }
    }
    if (!system.empty()) {
        out["system"] = std::move(system);
    }
    out["messages"] = std::move(messages);
    if (in.contains("stop") && !in["stop"].is_null()) {
        out["stop_sequences"] = in["stop"].is_string() ? Json::array({in["stop"]}) : in["stop"];
    }
    for (const char* key : {"temperature", "top_p"}) {
        if (in.contains(key) && in[key].is_number()) {
            out[key] = in[key];
        }
    }
    if (in.contains("user") && in["user"].is_string()) {
        out["metadata"] = {{"user_id", in["user"]}};
    }
    if (in.contains("tools") && in["tools"].is_array()) {
        Json tools = Json::array();
        for (const auto& t : in["tools"]) {
            if (!t.is_object() || t.value("type", "function") != "function") {
                tools.push_back(t);  // Anthropic server tools (web_search, ...) pass through
                continue;
            }
            const Json fn = t.value("function", Json::object());
            Json tool = {{"name", fn.value("name", "")},
                         {"input_schema", fn.value("parameters", Json{{"type", "object"},
                                                                     {"properties", Json::object()}})}};
            if (fn.contains("description")) {
                tool["description"] = fn["description"];
            }
            if (fn.contains("strict")) {
                tool["strict"] = fn["strict"];
            }
            for (const auto& [k, v] : t.items()) {
                if (k != "type" && k != "function") {
                    tool[k] = v;  // cache_control and anything else sluice does not model
                }
            }
            tools.push_back(std::move(tool));
        }
        out["tools"] = std::move(tools);
    }
    if (in.contains("tool_choice")) {
        const Json& tc = in["tool_choice"];
        if (tc == "auto") {
            out["tool_choice"] = {{"type", "auto"}};
        } else if (tc == "none") {
            out["tool_choice"] = {{"type", "none"}};
        } else if (tc == "required") {
            out["tool_choice"] = {{"type", "any"}};
        } else if (tc.is_object() && tc.contains("function")) {
            out["tool_choice"] = {{"type", "tool"}, {"name", tc["function"].value("name", "")}};
        }
    }
    if (in.contains("parallel_tool_calls") && in["parallel_tool_calls"] == false) {
        if (!out.contains("tool_choice")) {
            out["tool_choice"] = {{"type", "auto"}};
        }
        out["tool_choice"]["disable_parallel_tool_use"] = true;
    }
    if (in.contains("response_format") && in["response_format"].is_object() &&
        in["response_format"].value("type", "") == "json_schema") {
        const Json schema = in["response_format"].value("json_schema", Json::object()).value("schema", Json::object());
        out["output_config"] = {{"format", {{"type", "json_schema"}, {"schema", schema}}}};
    }
    if (in.contains("reasoning_effort") && in["reasoning_effort"].is_string()) {
        const std::string effort = in["reasoning_effort"];
        const std::int64_t budget = effort == "low" ? 1024 : effort == "high" ? 16384 : 4096;
        if (effort != "none" && effort != "minimal") {
            out["thinking"] = {{"type", "enabled"}, {"budget_tokens", budget}};
            max_tokens = std::max(max_tokens, budget + 1024);
        }
    }
    out["max_tokens"] = max_tokens;
    if (in.value("stream", false)) {
        out["stream"] = true;
    }
    // Anthropic-only fields a client may send on purpose pass through.
    for (const char* key : {"top_k", "thinking", "service_tier", "output_config", "metadata",
                            "container", "mcp_servers", "context_management"}) {
        if (in.contains(key) && !out.contains(key)) {
            out[key] = in[key];
        }
    }
    return std::nullopt;
}

Json anthropic_to_openai(const Json& msg, Usage& usage) {
    std::string text;
    std::string reasoning;
    Json tool_calls = Json::array();
    Json thinking_blocks = Json::array();
    for (const auto& block : msg.value("content", Json::array())) {
        const std::string type = block.value("type", "");
        if (type == "text") {
            text += block.value("text", "");
        } else if (type == "thinking") {
            reasoning += block.value("thinking", "");
            thinking_blocks.push_back(block);
        } else if (type == "redacted_thinking") {
            thinking_blocks.push_back(block);
        } else if (type == "tool_use") {
            tool_calls.push_back({{"id", block.value("id", "")},
                                  {"type", "function"},
                                  {"function",
                                   {{"name", block.value("name", "")},
                                    {"arguments", block.value("input", Json::object()).dump()}}}});
        }
    }
    Json message = {{"role", "assistant"}};
    message["content"] = text.empty() && !tool_calls.empty() ? Json(nullptr) : Json(text);
    if (!tool_calls.empty()) {
        message["tool_calls"] = std::move(tool_calls);
    }
    if (!reasoning.empty()) {
        message["reasoning_content"] = reasoning;
    }
    if (!thinking_blocks.empty()) {
        message["thinking_blocks"] = std::move(thinking_blocks);  // signatures, for the next turn
    }
    const Json u = msg.value("usage", Json::object());
    usage = anthropic_usage(u);
    return {{"id", msg.value("id", "")},
            {"object", "chat.completion"},
            {"created", static_cast<std::int64_t>(std::time(nullptr))},
            {"model", msg.value("model", "")},
            {"choices", Json::array({{{"index", 0},
                                      {"message", std::move(message)},
                                      {"logprobs", nullptr},
                                      {"finish_reason", finish_reason(msg.value("stop_reason", ""))}}})},
            {"usage", openai_usage(usage, int_field(u, "cache_read_input_tokens"))}};
}

AnthropicProvider::AnthropicProvider(const ProviderConfig& cfg) : OpenAiProvider(cfg) {}

void AnthropicProvider::add_headers(UpstreamRequest& out) const {
    if (!cfg_.api_key.empty()) {
        out.headers.emplace_back("x-api-key", cfg_.api_key);
    }
    if (cfg_.headers.count("anthropic-version") == 0) {
        out.headers.emplace_back("anthropic-version", kAnthropicVersion);
    }
    for (const auto& [k, v] : cfg_.headers) {
        out.headers.emplace_back(k, v);
    }
}

namespace {
std::string messages_path(const Url& url, std::string_view tail) {
    // base_url may be given with or without the /v1 suffix.
    std::string path = url.path;
    if (path.size() < 3 || path.compare(path.size() - 3, 3, "/v1") != 0) {
        path += "/v1";
    }
    return path + std::string(tail);
}
}  // namespace

std::optional<GatewayError> AnthropicProvider::build_request(const ApiRequest& req,
                                                             std::string_view upstream_model,
                                                             UpstreamRequest& out) const {
    if (anthropic_format(req.endpoint)) {
        // The front door to an Anthropic provider: the client's bytes, only the model spliced.
        out.method = "POST";
        out.target = messages_path(url_, req.endpoint == Endpoint::messages ? "/messages"
                                                                            : "/messages/count_tokens");
        out.headers.clear();
        add_headers(out);
        for (const auto& [name, value] : req.dialect_headers) {
            // The client's anthropic-version replaces sluice's default; betas are added.
            auto it = std::find_if(out.headers.begin(), out.headers.end(),
                                   [&name](const auto& h) { return h.first == name; });
            if (it != out.headers.end() && name == "anthropic-version") {
                it->second = value;
            } else {
                out.headers.emplace_back(name, value);
            }
        }
        if (req.stream) {
            out.headers.emplace_back("Accept", "text/event-stream");
        }
        out.body = splice_model(req, upstream_model);
        return std::nullopt;
    }
    if (req.endpoint != Endpoint::chat_completions) {
        return GatewayError::bad_request("Provider '" + name_ + "' (kind anthropic) serves chat "
                                         "completions only, not " + std::string(endpoint_name(req.endpoint)) + ".",
                                         "unsupported_endpoint");
    }
    const Json in = Json::parse(req.body, nullptr, false);
    Json body;
    if (auto err = openai_to_anthropic(in, upstream_model, cfg_.default_max_tokens, body)) {
        return err;
    }
    out.method = "POST";
    out.target = messages_path(url_, "/messages");
    out.headers.clear();
    add_headers(out);
    if (req.stream) {
        out.headers.emplace_back("Accept", "text/event-stream");
    }
    out.body = body.dump();
    return std::nullopt;
}

std::optional<UpstreamRequest> AnthropicProvider::models_request() const {
    UpstreamRequest r;
    r.method = "GET";
    r.target = messages_path(url_, "/models?limit=1000");
    r.content_type.clear();
    add_headers(r);
    return r;
}

std::unique_ptr<StreamRelay> AnthropicProvider::make_stream_relay(const ApiRequest& req) const {
    if (req.endpoint == Endpoint::messages) {
        return std::make_unique<MessagesPassthroughStream>();
    }
    return std::make_unique<AnthropicStreamRelay>(req.client_wants_usage,
                                                  static_cast<std::int64_t>(std::time(nullptr)));
}

Usage AnthropicProvider::parse_usage(std::string_view body) const {
    const Json msg = Json::parse(body, nullptr, false);
    if (msg.is_discarded() || !msg.is_object()) {
        return {};
    }
    return anthropic_usage(msg.value("usage", Json::object()));
}

std::optional<GatewayError> AnthropicProvider::translate_response(const ApiRequest& req,
                                                                  std::string& body,
                                                                  Usage& usage) const {
    if (req.endpoint == Endpoint::count_tokens) {
        return std::nullopt;  // {"input_tokens": N} goes back as it came
    }
    if (req.endpoint == Endpoint::messages) {
        usage = parse_usage(body);
        return std::nullopt;
    }
    const Json msg = Json::parse(body, nullptr, false);
    if (msg.is_discarded() || !msg.is_object() || msg.value("type", "") != "message") {
        return GatewayError::upstream_error("Provider '" + name_ +
                                            "' sent an answer that is not an Anthropic message.");
    }
    body = anthropic_to_openai(msg, usage).dump();
    return std::nullopt;
}

GatewayError AnthropicProvider::translate_error(int status, std::string_view body) const {
    // {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}
    GatewayError e = OpenAiProvider::translate_error(status, body);
    if (e.code == "upstream_auth_error") {
        return e;
    }
    const std::string anthropic_type = e.type;
    if (e.code.empty()) {
        e.code = anthropic_type;
    }
    if (anthropic_type == "api_error" || anthropic_type == "overloaded_error") {
        e.type = "server_error";  // 529 overloaded_error keeps its status: clients retry 5xx
    } else if (anthropic_type == "request_too_large") {
        e.type = "invalid_request_error";
    } else if (anthropic_type == "rate_limit_error") {
        e.code = "rate_limit_exceeded";
    }
    return e;
}

AnthropicStreamRelay::AnthropicStreamRelay(bool client_wants_usage, std::int64_t created)
    : client_wants_usage_(client_wants_usage), created_(created) {}

void AnthropicStreamRelay::emit(const Json& delta, const Json& finish_reason, std::string& out) {
    Json chunk = {{"id", id_},
                  {"object", "chat.completion.chunk"},
                  {"created", created_},
                  {"model", model_},
                  {"choices", Json::array({{{"index", 0},
                                            {"delta", delta},
                                            {"logprobs", nullptr},
                                            {"finish_reason", finish_reason}}})}};
    if (client_wants_usage_) {
        chunk["usage"] = nullptr;
    }
    sse::encode_data(chunk.dump(), out);
}

void AnthropicStreamRelay::on_event(const sse::Event& ev, std::string& out) {
    if (ev.comment_only) {
        return;
    }
    const Json data = Json::parse(ev.data, nullptr, false);
    if (data.is_discarded() || !data.is_object()) {
        return;
    }
    const std::string type = data.value("type", ev.event);
    if (type == "message_start") {
        const Json msg = data.value("message", Json::object());
        id_ = msg.value("id", "");
        model_ = msg.value("model", "");
        const Json u = msg.value("usage", Json::object());
        input_tokens_ = int_field(u, "input_tokens");
        cache_read_ = int_field(u, "cache_read_input_tokens");
        cache_write_ = int_field(u, "cache_creation_input_tokens");
        output_tokens_ = int_field(u, "output_tokens");
        usage_ = anthropic_usage(u);
        emit({{"role", "assistant"}, {"content", ""}}, nullptr, out);
    } else if (type == "content_block_start") {
        const int index = data.value("index", 0);
        const Json block = data.value("content_block", Json::object());
        if (block.value("type", "") == "redacted_thinking") {
            emit({{"thinking_blocks", Json::array({block})}}, nullptr, out);
        } else if (block.value("type", "") == "tool_use") {
            const int tool = next_tool_++;
            tool_index_[index] = tool;
            emit({{"tool_calls", Json::array({{{"index", tool},
                                                {"id", block.value("id", "")},
                                                {"type", "function"},
                                                {"function", {{"name", block.value("name", "")},
                                                              {"arguments", ""}}}}})}},
                 nullptr, out);
        } else if (block.value("type", "") == "text" && !block.value("text", "").empty()) {
            emit({{"content", block["text"]}}, nullptr, out);
        }
    } else if (type == "content_block_delta") {
        const int index = data.value("index", 0);
        const Json delta = data.value("delta", Json::object());
        const std::string dtype = delta.value("type", "");
        if (dtype == "text_delta") {
            emit({{"content", delta.value("text", "")}}, nullptr, out);
        } else if (dtype == "input_json_delta") {
            const auto it = tool_index_.find(index);
            if (it != tool_index_.end()) {
                emit({{"tool_calls", Json::array({{{"index", it->second},
                                                    {"function",
                                                     {{"arguments", delta.value("partial_json", "")}}}}})}},
                     nullptr, out);
            }
        } else if (dtype == "thinking_delta") {
            thinking_[index] += delta.value("thinking", "");
            emit({{"reasoning_content", delta.value("thinking", "")}}, nullptr, out);
        } else if (dtype == "signature_delta") {
            signature_[index] += delta.value("signature", "");
        }
    } else if (type == "content_block_stop") {
        const int index = data.value("index", 0);
        if (const auto it = signature_.find(index); it != signature_.end()) {
            // One complete block (text and signature) so a client can send the turn back.
            emit({{"thinking_blocks", Json::array({{{"type", "thinking"},
                                                    {"thinking", thinking_[index]},
                                                    {"signature", it->second}}})}},
                 nullptr, out);
        }
    } else if (type == "message_delta") {
        const Json delta = data.value("delta", Json::object());
        if (delta.contains("stop_reason") && delta["stop_reason"].is_string()) {
            finish_reason_ = finish_reason(delta["stop_reason"]);
        }
        const Json u = data.value("usage", Json::object());
        if (u.contains("output_tokens")) {
            output_tokens_ = int_field(u, "output_tokens");
        }
        if (u.contains("input_tokens")) {
            input_tokens_ = int_field(u, "input_tokens");
        }
        if (u.contains("cache_read_input_tokens")) {
            cache_read_ = int_field(u, "cache_read_input_tokens");
        }
        if (u.contains("cache_creation_input_tokens")) {
            cache_write_ = int_field(u, "cache_creation_input_tokens");
        }
        usage_.prompt_tokens = input_tokens_ + cache_read_ + cache_write_;
        usage_.completion_tokens = output_tokens_;
        usage_.total_tokens = usage_.prompt_tokens + usage_.completion_tokens;
        emit(Json::object(), finish_reason_.empty() ? Json("stop") : Json(finish_reason_), out);
    } else if (type == "message_stop") {
        if (client_wants_usage_) {
            Json chunk = {{"id", id_},
                          {"object", "chat.completion.chunk"},
                          {"created", created_},
                          {"model", model_},
                          {"choices", Json::array()},
                          {"usage", openai_usage(usage_, cache_read_)}};
            sse::encode_data(chunk.dump(), out);
        }
        sse::encode_data("[DONE]", out);
        done_ = true;
    } else if (type == "ping") {
        out += ": ping\n\n";  // keeps idle client connections alive; SDKs ignore comments
    } else if (type == "error") {
        const Json err = data.value("error", Json::object());
        GatewayError e;
        e.message = err.value("message", "The provider reported an error mid-stream.");
        e.code = err.value("type", "upstream_error");
        e.type = e.code == "rate_limit_error" ? "rate_limit_error" : "server_error";
        sse::encode_data(e.to_json(), out);
    }
}

}  // namespace sluice
