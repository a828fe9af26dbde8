#include "providers/anthropic_provider.hpp"

#include <algorithm>

#include "json/json_dom.hpp"
#include "providers/messages_translate.hpp"
#include "providers/openai_wire.hpp"
#include "providers/translate_common.hpp"
#include "sse/sse.hpp"
#include "stream/client_encoders.hpp"

namespace sluice {

using Json = nlohmann::json;
using json::Reader;
using json::Type;

namespace {

constexpr const char* kAnthropicVersion = "2023-06-01";

/// Request fields that are Anthropic's own and pass through untouched when a client sends them
/// on purpose through the OpenAI surface.
constexpr std::string_view kNativeFields[] = {"top_k",     "thinking",    "output_config",
                                              "container", "mcp_servers", "context_management"};

/// An OpenAI image part → an Anthropic image block (base64 from a data: URL, else a URL source).
/// Keys of the part sluice does not model (cache_control, ...) are kept.
bool image_block(const ChatPart& p, Json& block) {
    block = Json::object();
    block["type"] = "image";
    std::string_view media;
    std::string_view data;
    if (split_data_url(p.url, media, data)) {
        block["source"] = {
            {"type", "base64"}, {"media_type", std::string(media)}, {"data", std::string(data)}};
    } else if (p.url.rfind("https://", 0) == 0 || p.url.rfind("http://", 0) == 0) {
        block["source"] = {{"type", "url"}, {"url", std::string(p.url)}};
    } else {
        return false;
    }
    for (const auto& item : p.raw->items()) {
        if (item.key() != "type" && item.key() != "image_url") {
            block[item.key()] = item.value();
        }
    }
    return true;
}

/// A message's content → Anthropic content blocks. System prompts take text only.
void content_blocks(Reader& r, const TargetRules& t, const ChatMessage& m, bool system, Json& blocks) {
    if (m.content_is_text) {
        if (!m.text.empty()) {
            blocks.push_back({{"type", "text"}, {"text", std::string(m.text)}});
        }
        return;
    }
    for (const ChatPart& p : m.parts) {
        const std::string path = part_path(m.index, p.index);
        switch (p.kind) {
            case ChatPart::Kind::text:
                blocks.push_back(*p.raw);  // same shape in both APIs; cache_control and the rest kept
                break;
            case ChatPart::Kind::refusal:
                blocks.push_back({{"type", "text"}, {"text", std::string(p.text)}});
                break;
            case ChatPart::Kind::image: {
                if (system) {
                    refuse(r, t, path, "system prompts take text only");
                    break;
                }
                Json block;
                if (!image_block(p, block)) {
                    r.fail_at(path + ".image_url.url", "expected an http(s) URL or a base64 data: URL.");
                    break;
                }
                blocks.push_back(std::move(block));
                break;
            }
            case ChatPart::Kind::file: {
                std::string_view media;
                std::string_view data;
                if (system || !split_data_url(p.file_data, media, data)) {
                    refuse(r, t, path,
                           "files are sent as base64 data: URLs in file.file_data (file_id is OpenAI's)");
                    break;
                }
                Json block = {
                    {"type", "document"},
                    {"source",
                     {{"type", "base64"}, {"media_type", std::string(media)}, {"data", std::string(data)}}}};
                if (!p.filename.empty()) {
                    block["title"] = std::string(p.filename);
                }
                blocks.push_back(std::move(block));
                break;
            }
            case ChatPart::Kind::audio: refuse(r, t, path, "Anthropic models take no audio input"); break;
            case ChatPart::Kind::other:
                if (system) {
                    refuse(r, t, path, "system prompts take text only");
                    break;
                }
                blocks.push_back(*p.raw);  // Anthropic-native blocks (document, search_result, ...)
                break;
        }
    }
}

void translate_messages(Reader& r, const TargetRules& t, const ChatRequestView& v, Json& system,
                        Json& messages) {
    for (const ChatMessage& m : v.messages) {
        if (r.failed()) {
            return;
        }
        Json blocks = Json::array();
        if (m.role == "system" || m.role == "developer") {
            content_blocks(r, t, m, true, blocks);
            for (auto& b : blocks) {
                system.push_back(std::move(b));
            }
        } else if (m.role == "user") {
            content_blocks(r, t, m, false, blocks);
            append_turn(messages, "user", std::move(blocks));
        } else if (m.role == "assistant") {
            // Thinking blocks sluice returned earlier (with their signatures) go back first, as
            // Anthropic requires when a turn continues after thinking and tool use.
            if (m.thinking_blocks != nullptr) {
                for (const auto& tb : *m.thinking_blocks) {
                    blocks.push_back(tb);
                }
            }
            content_blocks(r, t, m, false, blocks);
            for (const ChatToolCall& call : m.tool_calls) {
                Json input;
                if (!tool_call_input(r, m, call, "Anthropic", input)) {
                    return;
                }
                blocks.push_back({{"type", "tool_use"},
                                  {"id", std::string(call.id)},
                                  {"name", std::string(call.name)},
                                  {"input", std::move(input)}});
            }
            append_turn(messages, "assistant", std::move(blocks));
        } else if (m.role == "tool") {
            Json result = {{"type", "tool_result"}, {"tool_use_id", std::string(m.tool_call_id)}};
            if (m.content_is_text || !m.has_content) {
                result["content"] = std::string(m.text);
            } else {
                Json inner = Json::array();
                content_blocks(r, t, m, false, inner);
                result["content"] = std::move(inner);
            }
            append_turn(messages, "user", Json::array({std::move(result)}));
        }
    }
}

void translate_tools(const ChatRequestView& v, Json& out) {
    if (v.doc == nullptr || json::find(*v.doc, "tools") == nullptr) {
        return;
    }
    Json tools = Json::array();
    for (const ChatTool& tool : v.tools) {
        if (!tool.function) {
            tools.push_back(*tool.raw);  // Anthropic server tools (web_search, ...) pass through
            continue;
        }
        Json t = Json::object();
        t["name"] = std::string(tool.name);
        if (tool.description != nullptr) {
            t["description"] = *tool.description;
        }
        t["input_schema"] = tool.parameters != nullptr
                                ? *tool.parameters
                                : Json{{"type", "object"}, {"properties", Json::object()}};
        if (tool.strict) {
            t["strict"] = *tool.strict;
        }
        for (const auto& item : tool.raw->items()) {
            if (item.key() != "type" && item.key() != "function") {
                t[item.key()] = item.value();  // cache_control and anything else sluice does not model
            }
        }
        tools.push_back(std::move(t));
    }
    out["tools"] = std::move(tools);
}

Json openai_usage(const Usage& u, std::int64_t cached) {
    Json j = {{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.prompt_tokens + u.completion_tokens}};
    j["prompt_tokens_details"] = {{"cached_tokens", cached}};
    return j;
}

/// Reads one token count: absent/null leave `out` alone; anything but a non-negative integer is
/// the provider's error.
void count(Reader& r, const Json& u, std::string_view key, std::optional<std::int64_t>& out) {
    if (const auto v = r.integer(u, key)) {
        if (*v < 0) {
            r.fail(key, "token counts are never negative.");
        } else {
            out = v;
        }
    }
}

}  // namespace

void read_anthropic_usage(Reader& r, const Json& u, AnthropicUsage& out) {
    if (!r.expect(u, Type::object)) {
        return;
    }
    count(r, u, "input_tokens", out.input);
    count(r, u, "output_tokens", out.output);
    count(r, u, "cache_read_input_tokens", out.cache_read);
    count(r, u, "cache_creation_input_tokens", out.cache_write);
}

Usage AnthropicUsage::usage() const {
    Usage out;
    out.prompt_tokens = input.value_or(0) + cache_read.value_or(0) + cache_write.value_or(0);
    out.completion_tokens = output.value_or(0);
    out.total_tokens = out.prompt_tokens + out.completion_tokens;
    return out;
}

void AnthropicUsage::merge(const AnthropicUsage& later) {
    for (auto [mine, theirs] :
         {std::pair{&input, &later.input}, std::pair{&output, &later.output},
          std::pair{&cache_read, &later.cache_read}, std::pair{&cache_write, &later.cache_write}}) {
        if (*theirs) {
            *mine = *theirs;
        }
    }
}

std::optional<GatewayError> openai_to_anthropic(const Json& in, std::string_view model,
                                                int default_max_tokens, Json& out, bool drop_unsupported) {
    Reader r;
    ChatRequestView v;
    read_chat_request(in, r, v);
    if (r.failed()) {
        return r.client_error();
    }
    const TargetRules t{"Anthropic", drop_unsupported};
    refuse_openai_only(r, t, v, SamplingSupport{});
    refuse_message_names(r, t, v);

    out = Json::object();
    out["model"] = model;
    std::int64_t max_tokens = v.max_tokens.value_or(default_max_tokens);
    Json system = Json::array();
    Json messages = Json::array();
    translate_messages(r, t, v, system, messages);
    if (!system.empty()) {
        out["system"] = std::move(system);
    }
    out["messages"] = std::move(messages);
    if (v.stop_set) {
        Json stop = Json::array();
        for (const auto s : v.stop) {
            stop.push_back(std::string(s));
        }
        out["stop_sequences"] = std::move(stop);
    }
    if (v.temperature) {
        out["temperature"] = *v.temperature;
    }
    if (v.top_p) {
        out["top_p"] = *v.top_p;
    }
    if (v.user != nullptr) {
        out["metadata"] = {{"user_id", *v.user}};
    }
    translate_tools(v, out);
    switch (v.tool_choice.mode) {
        case ChatToolChoice::Mode::none_set: break;
        case ChatToolChoice::Mode::none: out["tool_choice"] = {{"type", "none"}}; break;
        case ChatToolChoice::Mode::auto_: out["tool_choice"] = {{"type", "auto"}}; break;
        case ChatToolChoice::Mode::required: out["tool_choice"] = {{"type", "any"}}; break;
        case ChatToolChoice::Mode::function:
            out["tool_choice"] = {{"type", "tool"}, {"name", std::string(v.tool_choice.function)}};
            break;
    }
    if (v.parallel_tool_calls && !*v.parallel_tool_calls) {
        if (!out.contains("tool_choice")) {
            out["tool_choice"] = {{"type", "auto"}};
        }
        out["tool_choice"]["disable_parallel_tool_use"] = true;
    }
    if (v.response_format == "json_schema") {
        if (v.response_schema == nullptr) {
            refuse(r, t, "response_format.json_schema.schema", "structured output needs a schema");
        } else {
            out["output_config"] = {{"format", {{"type", "json_schema"}, {"schema", *v.response_schema}}}};
        }
    } else if (v.response_format == "json_object") {
        refuse(r, t, "response_format", "JSON mode without a schema (use type json_schema)");
    }
    if (v.reasoning_effort != nullptr) {
        std::int64_t budget = 0;
        if (!reasoning_budget(*v.reasoning_effort, 1024, 4096, 16384, budget)) {
            r.fail_at("reasoning_effort", "expected none, minimal, low, medium or high.");
        } else if (budget > 0) {
            out["thinking"] = {{"type", "enabled"}, {"budget_tokens", budget}};
            max_tokens = std::max(max_tokens, budget + 1024);
        }
    }
    out["max_tokens"] = max_tokens;
    if (v.stream) {
        out["stream"] = true;
    }
    if (v.service_tier != nullptr) {
        out["service_tier"] = *v.service_tier;
    }
    if (v.metadata != nullptr) {
        for (const auto& item : v.metadata->items()) {
            if (item.key() != "user_id") {
                refuse(r, t, "metadata." + item.key(), "Anthropic's metadata holds user_id only");
            } else if (!out.contains("metadata")) {
                out["metadata"] = *v.metadata;
            }
        }
    }
    for (const std::string_view key : v.unknown) {
        const bool native =
            std::find(std::begin(kNativeFields), std::end(kNativeFields), key) != std::end(kNativeFields);
        if (native) {
            if (!out.contains(key)) {
                out[std::string(key)] = *json::find(in, key);
            }
        } else if (!drop_unsupported) {
            r.unknown(key);
        }
    }
    if (r.failed()) {
        return r.client_error();
    }
    return std::nullopt;
}

std::optional<GatewayError> anthropic_to_openai(const Json& msg, std::string_view provider,
                                                std::int64_t created, Json& out, Usage& usage) {
    Reader r(Reader::Side::provider);
    std::string text;
    std::string reasoning;
    Json tool_calls = Json::array();
    Json thinking_blocks = Json::array();
    if (!r.expect(msg, Type::object)) {
        return r.provider_error(provider);
    }
    if (const std::string* type = r.string(msg, "type"); type != nullptr && *type != "message") {
        r.fail("type", "expected 'message'.");
    }
    if (const Json* content = r.array(msg, "content")) {
        auto in_content = r.at("content");
        for (std::size_t i = 0; i < content->size() && r.ok(); ++i) {
            auto in_block = r.at(i);
            const Json& block = (*content)[i];
            if (!r.expect(block, Type::object)) {
                break;
            }
            const std::string* type = r.need_string(block, "type");
            if (type == nullptr) {
                break;
            }
            if (*type == "text") {
                if (const std::string* t = r.need_string(block, "text")) {
                    text += *t;
                }
            } else if (*type == "thinking") {
                if (const std::string* t = r.need_string(block, "thinking")) {
                    reasoning += *t;
                }
                r.string(block, "signature");
                thinking_blocks.push_back(block);
            } else if (*type == "redacted_thinking") {
                r.need_string(block, "data");
                thinking_blocks.push_back(block);
            } else if (*type == "tool_use") {
                const std::string* id = r.need_string(block, "id");
                const std::string* name = r.need_string(block, "name");
                const Json* input = r.object(block, "input");
                if (id != nullptr && name != nullptr) {
                    tool_calls.push_back(
                        {{"id", *id},
                         {"type", "function"},
                         {"function",
                          {{"name", *name},
                           {"arguments", input != nullptr ? json::to_text(*input) : "{}"}}}});
                }
            }
            // Server tool results (web_search_tool_result, ...) have no OpenAI form: the text
            // blocks around them carry the answer.
        }
    }
    AnthropicUsage au;
    if (const Json* u = r.object(msg, "usage")) {
        auto in_usage = r.at("usage");
        read_anthropic_usage(r, *u, au);
    }
    const std::string* stop_reason = r.string(msg, "stop_reason");
    const std::string* id = r.string(msg, "id");
    const std::string* model = r.string(msg, "model");
    if (r.failed()) {
        return r.provider_error(provider);
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
    usage = au.usage();
    out = {{"id", id != nullptr ? *id : std::string()},
           {"object", "chat.completion"},
           {"created", created},
           {"model", model != nullptr ? *model : std::string()},
           {"choices", Json::array({{{"index", 0},
                                     {"message", std::move(message)},
                                     {"logprobs", nullptr},
                                     {"finish_reason",
                                      openai_finish_reason(stop_reason != nullptr ? *stop_reason : "")}}})},
           {"usage", openai_usage(usage, au.cache_read.value_or(0))}};
    return std::nullopt;
}

GatewayError anthropic_stream_error(const Json& data) {
    // {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}
    const Json* err = json::find(data, "error");
    const std::string_view type = err != nullptr ? json::string_or(*err, "type", "api_error") : "api_error";
    GatewayError e;
    e.source = ErrorSource::upstream;
    e.message = std::string(
        err != nullptr ? json::string_or(*err, "message", "The provider reported an error mid-stream.")
                       : "The provider reported an error mid-stream.");
    e.code = std::string(type);
    if (type == "rate_limit_error") {
        e.status = 429;
        e.type = "rate_limit_error";
    } else if (type == "overloaded_error") {
        e.status = 529;
        e.type = "server_error";
    } else if (type == "api_error") {
        e.status = 500;
        e.type = "server_error";
    } else {
        e.status = 502;
        e.type = "server_error";
    }
    return e;
}

AnthropicProvider::AnthropicProvider(const ProviderConfig& cfg) : ConfiguredProvider(cfg) {}

void AnthropicProvider::add_headers(UpstreamRequest& out) const {
    if (!cfg_.api_key.empty()) {
        out.headers.emplace_back("x-api-key", cfg_.api_key);
    }
    if (cfg_.headers.count("anthropic-version") == 0) {
        out.headers.emplace_back("anthropic-version", kAnthropicVersion);
    }
    add_config_headers(out);
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
        out.target =
            messages_path(url_, req.endpoint == Endpoint::messages ? "/messages" : "/messages/count_tokens");
        out.headers.clear();
        add_headers(out);
        for (const auto& header : req.dialect_headers) {
            const auto& [name, value] = header;
            // The client's anthropic-version replaces sluice's default; betas are added.
            auto it = std::find_if(out.headers.begin(), out.headers.end(),
                                   [&header](const auto& h) { return h.first == header.first; });
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
        return GatewayError::bad_request("Provider '" + name_ +
                                             "' (kind anthropic) serves chat "
                                             "completions only, not " +
                                             std::string(endpoint_name(req.endpoint)) + ".",
                                         "unsupported_endpoint");
    }
    Json in;
    if (!json::parse_untrusted(req.body, in)) {
        return GatewayError::invalid_json("The request body is not valid JSON.");
    }
    Json body;
    if (auto err = openai_to_anthropic(in, upstream_model, cfg_.default_max_tokens, body,
                                       cfg_.drop_unsupported_params)) {
        return err;
    }
    out.method = "POST";
    out.target = messages_path(url_, "/messages");
    out.headers.clear();
    add_headers(out);
    if (req.stream) {
        out.headers.emplace_back("Accept", "text/event-stream");
    }
    out.body = json::to_text(body);
    return std::nullopt;
}

std::optional<UpstreamRequest> AnthropicProvider::models_request() const {
    UpstreamRequest r = get_request(messages_path(url_, "/models?limit=1000"));
    add_headers(r);
    return r;
}

std::unique_ptr<StreamRelay> AnthropicProvider::make_stream_relay(const ApiRequest& /*req*/, StreamOutput out,
                                                                  std::int64_t now) const {
    if (out.passthrough == StreamOutput::Passthrough::anthropic) {
        return std::make_unique<MessagesPassthroughStream>();  // the client reads Anthropic's events
    }
    return std::make_unique<AnthropicStreamRelay>(std::move(out.sink), now);
}

std::optional<GatewayError> AnthropicProvider::translate_response(const ApiRequest& req, std::string& body,
                                                                  std::int64_t now_unix,
                                                                  Answer& answer) const {
    answer = Answer{};
    if (req.endpoint == Endpoint::count_tokens) {
        return std::nullopt;  // {"input_tokens": N} goes back as it came
    }
    Json msg;
    if (!json::parse_untrusted(body, msg) || !msg.is_object()) {
        return GatewayError::upstream_error(
            "Provider '" + name_ + "' sent an answer that is not a JSON object.",
            "upstream_invalid_response");
    }
    if (req.endpoint == Endpoint::messages) {
        // Passed through as it came; only the usage is read (strictly: it is what sluice bills).
        Reader r(Reader::Side::provider);
        AnthropicUsage au;
        if (const Json* u = r.object(msg, "usage")) {
            auto in_usage = r.at("usage");
            read_anthropic_usage(r, *u, au);
        }
        if (r.failed()) {
            return r.provider_error(name_);
        }
        answer.usage = au.usage();
        answer.refused = json::string_or(msg, "stop_reason") == "refusal";
        return std::nullopt;
    }
    Json chat;
    if (auto err = anthropic_to_openai(msg, name_, now_unix, chat, answer.usage)) {
        return err;
    }
    answer.refused = chat_refused(chat);
    body = json::to_text(chat);
    return std::nullopt;
}

ProviderError AnthropicProvider::translate_error(int status, const HeaderView& headers, std::string_view body,
                                                 std::int64_t now_unix) const {
    // Anthropic sends retry-after (seconds) on 429 and 529.
    return ProviderError{anthropic_error(status, body), retry_after_headers(headers, now_unix)};
}

GatewayError AnthropicProvider::anthropic_error(int status, std::string_view body) const {
    // {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}
    GatewayError e = body_error(status, body);
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
    } else if (anthropic_type == "billing_error") {
        // Out of credit: not a rate limit, retrying or pausing will not help.
        e.type = "insufficient_quota";
        e.code = "insufficient_quota";
    }
    return e;
}

AnthropicStreamRelay::AnthropicStreamRelay(std::unique_ptr<DeltaSink> sink, std::int64_t created)
    : DeltaRelay(std::move(sink)), created_(created) {}

bool AnthropicStreamRelay::on_event(const sse::Event& ev, std::string& out) {
    if (ev.comment_only || !ev.has_data) {
        return true;
    }
    Json data;
    if (!json::parse_untrusted(ev.data, data) || !data.is_object()) {
        return fail_invalid("an event that is not a JSON object");
    }
    Reader r(Reader::Side::provider);
    const std::string type(json::string_or(data, "type", ev.event));
    if (type == "error") {
        return fail(anthropic_stream_error(data));
    }
    handle(r, type, data, out);
    if (r.failed()) {
        return fail_invalid("'" + type + "' event: " + r.error_message());
    }
    if (buffered_ > kMaxStreamBuffer) {
        return fail_invalid("thinking and signature text over " + std::to_string(kMaxStreamBuffer) +
                            " bytes");
    }
    return !sink_stopped() || sink_failure();
}

void AnthropicStreamRelay::read_usage(Reader& r, const Json& holder) {
    if (const Json* u = r.object(holder, "usage")) {
        auto in_usage = r.at("usage");
        AnthropicUsage au;
        read_anthropic_usage(r, *u, au);
        usage_acc_.merge(au);
        usage_ = usage_acc_.usage();
    }
}

void AnthropicStreamRelay::handle(Reader& r, const std::string& type, const Json& data, std::string& out) {
    if (type == "message_start") {
        const Json* msg = r.need_object(data, "message");
        if (msg == nullptr) {
            return;
        }
        auto in_msg = r.at("message");
        StreamDelta d = StreamDelta::of(StreamDelta::Kind::start);
        d.created = created_;
        if (const std::string* id = r.string(*msg, "id")) {
            d.id = *id;
        }
        if (const std::string* model = r.string(*msg, "model")) {
            d.name = *model;
        }
        read_usage(r, *msg);
        push(std::move(d), out);
    } else if (type == "content_block_start") {
        block_start(r, data, out);
    } else if (type == "content_block_delta") {
        block_delta(r, data, out);
    } else if (type == "content_block_stop") {
        block_stop(r, data, out);
    } else if (type == "message_delta") {
        if (const Json* delta = r.object(data, "delta")) {
            auto in_delta = r.at("delta");
            if (const std::string* stop = r.string(*delta, "stop_reason")) {
                finish_reason_ = openai_finish_reason(*stop);
            }
        }
        read_usage(r, data);
        if (r.ok()) {
            StreamDelta d = StreamDelta::of(StreamDelta::Kind::finish);
            d.finish_reason = finish_reason_.empty() ? "stop" : finish_reason_;
            push(std::move(d), out);
        }
    } else if (type == "message_stop") {
        StreamDelta d = StreamDelta::of(StreamDelta::Kind::usage);
        d.usage = usage_;
        d.usage.total_tokens = usage_.prompt_tokens + usage_.completion_tokens;
        d.cached_tokens = usage_acc_.cache_read.value_or(0);
        done_ = true;
        if (push(std::move(d), out)) {
            push_end(out);
        }
    } else if (type == "ping") {
        push(StreamDelta::of(StreamDelta::Kind::ping), out);  // keeps idle client connections alive
    }
}

void AnthropicStreamRelay::block_start(Reader& r, const Json& data, std::string& out) {
    const auto index = r.need_integer(data, "index");
    const Json* block = r.need_object(data, "content_block");
    if (!index || block == nullptr) {
        return;
    }
    auto in_block = r.at("content_block");
    const std::string* btype = r.need_string(*block, "type");
    if (btype == nullptr) {
        return;
    }
    if (*btype == "redacted_thinking") {
        push(StreamDelta::of(StreamDelta::Kind::reasoning_block, json::to_text(*block)), out);
    } else if (*btype == "tool_use") {
        const std::string* id = r.need_string(*block, "id");
        const std::string* name = r.need_string(*block, "name");
        if (id == nullptr || name == nullptr) {
            return;
        }
        if (tool_index_.size() >= kMaxToolCalls) {
            r.fail("index", "more tool calls than sluice relays in one answer.");
            return;
        }
        StreamDelta d = StreamDelta::of(StreamDelta::Kind::tool_call);
        d.tool = next_tool_++;
        d.id = *id;
        d.name = *name;
        tool_index_[*index] = d.tool;
        push(std::move(d), out);
    } else if (*btype == "text") {
        const std::string* text = r.string(*block, "text");
        if (text != nullptr && !text->empty()) {
            push(StreamDelta::of(StreamDelta::Kind::text, *text), out);
        }
    }
}

void AnthropicStreamRelay::block_delta(Reader& r, const Json& data, std::string& out) {
    const auto index = r.need_integer(data, "index");
    const Json* delta = r.need_object(data, "delta");
    if (!index || delta == nullptr) {
        return;
    }
    auto in_delta = r.at("delta");
    const std::string* dtype = r.need_string(*delta, "type");
    if (dtype == nullptr) {
        return;
    }
    if (*dtype == "text_delta") {
        if (const std::string* text = r.need_string(*delta, "text")) {
            push(StreamDelta::of(StreamDelta::Kind::text, *text), out);
        }
    } else if (*dtype == "input_json_delta") {
        const std::string* partial = r.need_string(*delta, "partial_json");
        const auto it = tool_index_.find(*index);
        if (partial != nullptr && it != tool_index_.end()) {
            StreamDelta d = StreamDelta::of(StreamDelta::Kind::tool_args, *partial);
            d.tool = it->second;
            push(std::move(d), out);
        }
    } else if (*dtype == "thinking_delta") {
        if (const std::string* thinking = r.need_string(*delta, "thinking")) {
            thinking_[*index] += *thinking;
            buffered_ += thinking->size();
            push(StreamDelta::of(StreamDelta::Kind::reasoning, *thinking), out);
        }
    } else if (*dtype == "signature_delta") {
        if (const std::string* sig = r.need_string(*delta, "signature")) {
            signature_[*index] += *sig;
            buffered_ += sig->size();
        }
    }
}

void AnthropicStreamRelay::block_stop(Reader& r, const Json& data, std::string& out) {
    const auto index = r.need_integer(data, "index");
    if (!index) {
        return;
    }
    if (const auto it = signature_.find(*index); it != signature_.end()) {
        // One complete block (text and signature) so a client can send the turn back.
        const Json block = {{"type", "thinking"}, {"thinking", thinking_[*index]}, {"signature", it->second}};
        push(StreamDelta::of(StreamDelta::Kind::reasoning_block, json::to_text(block)), out);
        buffered_ -= std::min(buffered_, it->second.size());
        signature_.erase(it);
    }
    if (const auto it = thinking_.find(*index); it != thinking_.end()) {
        buffered_ -= std::min(buffered_, it->second.size());
        thinking_.erase(it);
    }
}

}  // namespace sluice
