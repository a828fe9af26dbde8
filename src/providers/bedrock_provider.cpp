#include "providers/bedrock_provider.hpp"

#include <ctime>

#include "json/json_dom.hpp"
#include "providers/translate_common.hpp"
#include "sse/sse.hpp"
#include "util/scrub.hpp"
#include "util/strings.hpp"
#include "util/url.hpp"

namespace sluice {

using Json = nlohmann::json;
using json::Reader;
using json::Type;

namespace {

/// A message's content → Converse content blocks (text; images as base64 data: URLs).
void to_blocks(Reader& r, const TargetRules& t, const ChatMessage& m, bool system, Json& blocks) {
    if (m.content_is_text) {
        if (!m.text.empty()) {
            blocks.push_back({{"text", std::string(m.text)}});
        }
        return;
    }
    for (const ChatPart& p : m.parts) {
        const std::string path = part_path(m.index, p.index);
        if (p.kind == ChatPart::Kind::text || p.kind == ChatPart::Kind::refusal) {
            blocks.push_back({{"text", std::string(p.text)}});
            continue;
        }
        if (system) {
            refuse(r, t, path, "system prompts take text only");
            return;
        }
        if (p.kind == ChatPart::Kind::image) {
            std::string_view media;
            std::string_view data;
            if (!split_data_url(p.url, media, data) || media.rfind("image/", 0) != 0 || media.size() <= 6) {
                refuse(r, t, path + ".image_url.url", "Bedrock takes images as base64 data: URLs only");
                return;
            }
            blocks.push_back({{"image",
                               {{"format", std::string(media.substr(6))},  // png, jpeg, gif, webp
                                {"source", {{"bytes", std::string(data)}}}}}});
            continue;
        }
        refuse(r, t, path, "content parts of type '" + std::string(p.type) + "' have no Converse form");
        return;
    }
}

std::string finish_for(std::string_view stop) {
    if (stop == "tool_use") {
        return "tool_calls";
    }
    if (stop == "max_tokens") {
        return "length";
    }
    if (stop == "guardrail_intervened" || stop == "content_filtered") {
        return "content_filter";
    }
    return "stop";
}

/// Converse usage, read strictly.
struct ConverseUsage {
    std::int64_t input = 0;
    std::int64_t output = 0;
    std::int64_t cache_read = 0;
    std::int64_t cache_write = 0;
    Usage usage() const {
        Usage u;
        u.prompt_tokens = input + cache_read + cache_write;
        u.completion_tokens = output;
        u.total_tokens = u.prompt_tokens + u.completion_tokens;
        return u;
    }
    Json json() const {
        const Usage u = usage();
        return {{"prompt_tokens", u.prompt_tokens},
                {"completion_tokens", u.completion_tokens},
                {"total_tokens", u.total_tokens},
                {"prompt_tokens_details", {{"cached_tokens", cache_read}}}};
    }
};

void read_usage(Reader& r, const Json& u, ConverseUsage& out) {
    if (!r.expect(u, Type::object)) {
        return;
    }
    for (const auto& [key, slot] :
         {std::pair{"inputTokens", &out.input}, std::pair{"outputTokens", &out.output},
          std::pair{"cacheReadInputTokens", &out.cache_read},
          std::pair{"cacheWriteInputTokens", &out.cache_write}}) {
        if (const auto v = r.integer(u, key)) {
            if (*v < 0) {
                r.fail(key, "token counts are never negative.");
            }
            *slot = *v;
        }
    }
}

GatewayError converse_stream_error(std::string_view exception_type, const Json& payload) {
    GatewayError e;
    e.source = ErrorSource::upstream;
    e.code = exception_type.empty() ? "upstream_error" : std::string(exception_type);
    e.message =
        std::string(json::string_or(payload, "message", "The provider reported an error mid-stream."));
    e.type = "server_error";
    if (exception_type == "throttlingException") {
        e.status = 429;
        e.type = "rate_limit_error";
    } else if (exception_type == "serviceUnavailableException") {
        e.status = 503;
    } else if (exception_type == "internalServerException") {
        e.status = 500;
    } else {
        e.status = 502;
    }
    return e;
}

std::string amz_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[20];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

}  // namespace

std::optional<GatewayError> openai_to_converse(const Json& in, Json& out, bool drop_unsupported) {
    Reader r;
    ChatRequestView v;
    read_chat_request(in, r, v);
    if (r.failed()) {
        return r.client_error();
    }
    const TargetRules t{"Bedrock", drop_unsupported};
    refuse_openai_only(r, t, v, SamplingSupport{});
    refuse_message_names(r, t, v);
    out = Json::object();
    Json system = Json::array();
    Json messages = Json::array();
    for (const ChatMessage& m : v.messages) {
        if (r.failed()) {
            break;
        }
        Json blocks = Json::array();
        if (m.role == "system" || m.role == "developer") {
            to_blocks(r, t, m, true, blocks);
            for (auto& b : blocks) {
                system.push_back(std::move(b));
            }
        } else if (m.role == "user") {
            to_blocks(r, t, m, false, blocks);
            append_turn(messages, "user", std::move(blocks));
        } else if (m.role == "assistant") {
            to_blocks(r, t, m, false, blocks);
            for (const ChatToolCall& call : m.tool_calls) {
                Json input;
                if (!tool_call_input(r, m, call, "Bedrock", input)) {
                    break;
                }
                blocks.push_back({{"toolUse",
                                   {{"toolUseId", std::string(call.id)},
                                    {"name", std::string(call.name)},
                                    {"input", std::move(input)}}}});
            }
            append_turn(messages, "assistant", std::move(blocks));
        } else if (m.role == "tool") {
            if (!m.content_is_text) {
                for (const ChatPart& p : m.parts) {
                    if (p.kind != ChatPart::Kind::text) {
                        refuse(r, t, part_path(m.index, p.index), "tool results travel as text only");
                    }
                }
            }
            append_turn(messages, "user",
                        Json::array({{{"toolResult",
                                       {{"toolUseId", std::string(m.tool_call_id)},
                                        {"content", Json::array({{{"text", message_text(m)}}})}}}}}));
        }
    }
    out["messages"] = std::move(messages);
    if (!system.empty()) {
        out["system"] = std::move(system);
    }
    Json inference = Json::object();
    if (v.max_tokens) {
        inference["maxTokens"] = *v.max_tokens;
    }
    if (v.temperature) {
        inference["temperature"] = *v.temperature;
    }
    if (v.top_p) {
        inference["topP"] = *v.top_p;
    }
    if (v.stop_set) {
        Json stop = Json::array();
        for (const auto s : v.stop) {
            stop.push_back(std::string(s));
        }
        inference["stopSequences"] = std::move(stop);
    }
    if (!inference.empty()) {
        out["inferenceConfig"] = std::move(inference);
    }
    if (!v.tools.empty()) {
        Json tools = Json::array();
        for (const ChatTool& tool : v.tools) {
            if (!tool.function) {
                refuse(r, t, "tools[" + std::to_string(tool.index) + "].type",
                       "only function tools are translated");
                break;
            }
            Json spec = {
                {"name", std::string(tool.name)},
                {"inputSchema",
                 {{"json", tool.parameters != nullptr ? *tool.parameters : Json{{"type", "object"}}}}}};
            if (tool.description != nullptr) {
                spec["description"] = *tool.description;
            }
            tools.push_back({{"toolSpec", std::move(spec)}});
        }
        Json config = {{"tools", std::move(tools)}};
        switch (v.tool_choice.mode) {
            case ChatToolChoice::Mode::required: config["toolChoice"] = {{"any", Json::object()}}; break;
            case ChatToolChoice::Mode::auto_: config["toolChoice"] = {{"auto", Json::object()}}; break;
            case ChatToolChoice::Mode::function:
                config["toolChoice"] = {{"tool", {{"name", std::string(v.tool_choice.function)}}}};
                break;
            case ChatToolChoice::Mode::none:
                refuse(r, t, "tool_choice", "Converse cannot forbid the tools it was given");
                break;
            case ChatToolChoice::Mode::none_set: break;
        }
        out["toolConfig"] = std::move(config);
    } else if (v.tool_choice.mode == ChatToolChoice::Mode::required ||
               v.tool_choice.mode == ChatToolChoice::Mode::function) {
        r.fail_at("tool_choice", "a tool choice needs tools.");
    }
    if (v.parallel_tool_calls && !*v.parallel_tool_calls) {
        refuse(r, t, "parallel_tool_calls", "Converse cannot be told to make one call at a time");
    }
    if (v.response_format == "json_object" || v.response_format == "json_schema") {
        refuse(r, t, "response_format", "Converse has no JSON output mode");
    }
    if (v.reasoning_effort != nullptr) {
        std::int64_t budget = 0;
        if (!reasoning_budget(*v.reasoning_effort, 1, 1, 1, budget)) {
            r.fail_at("reasoning_effort", "expected none, minimal, low, medium or high.");
        } else if (budget > 0) {
            refuse(r, t, "reasoning_effort", "reasoning settings differ per Bedrock model family");
        }
    }
    if (v.service_tier != nullptr) {
        refuse(r, t, "service_tier", "service tiers are OpenAI's");
    }
    for (const std::string_view key : v.unknown) {
        if (!drop_unsupported) {
            r.unknown(key);
        }
    }
    if (r.failed()) {
        return r.client_error();
    }
    return std::nullopt;
}

std::optional<GatewayError> converse_to_openai(const Json& resp, std::string_view model,
                                               std::string_view provider, std::int64_t created, Json& out,
                                               Usage& usage) {
    Reader r(Reader::Side::provider);
    std::string text;
    std::string reasoning;
    Json calls = Json::array();
    if (!r.expect(resp, Type::object)) {
        return r.provider_error(provider);
    }
    if (const Json* output = r.object(resp, "output")) {
        auto in_output = r.at("output");
        if (const Json* message = r.object(*output, "message")) {
            auto in_message = r.at("message");
            if (const Json* content = r.array(*message, "content")) {
                auto in_content = r.at("content");
                for (std::size_t i = 0; i < content->size() && r.ok(); ++i) {
                    auto in_block = r.at(i);
                    const Json& b = (*content)[i];
                    if (!r.expect(b, Type::object)) {
                        break;
                    }
                    if (const std::string* t = r.string(b, "text")) {
                        text += *t;
                    } else if (const Json* tu = r.object(b, "toolUse")) {
                        auto in_tu = r.at("toolUse");
                        const std::string* id = r.need_string(*tu, "toolUseId");
                        const std::string* name = r.need_string(*tu, "name");
                        const Json* input = r.object(*tu, "input");
                        if (id != nullptr && name != nullptr) {
                            calls.push_back(
                                {{"id", *id},
                                 {"type", "function"},
                                 {"function",
                                  {{"name", *name},
                                   {"arguments", input != nullptr ? json::to_text(*input) : "{}"}}}});
                        }
                    } else if (const Json* rc = r.object(b, "reasoningContent")) {
                        auto in_rc = r.at("reasoningContent");
                        if (const Json* rt = r.object(*rc, "reasoningText")) {
                            auto in_rt = r.at("reasoningText");
                            if (const std::string* rtext = r.string(*rt, "text")) {
                                reasoning += *rtext;
                            }
                        }
                    }
                }
            }
        }
    }
    ConverseUsage cu;
    if (const Json* u = r.object(resp, "usage")) {
        auto in_usage = r.at("usage");
        read_usage(r, *u, cu);
    }
    const std::string* stop = r.string(resp, "stopReason");
    if (r.failed()) {
        return r.provider_error(provider);
    }
    Json msg = {{"role", "assistant"},
                {"content", text.empty() && !calls.empty() ? Json(nullptr) : Json(text)}};
    if (!calls.empty()) {
        msg["tool_calls"] = std::move(calls);
    }
    if (!reasoning.empty()) {
        msg["reasoning_content"] = reasoning;
    }
    usage = cu.usage();
    out = {{"id", "chatcmpl-bedrock"},
           {"object", "chat.completion"},
           {"created", created},
           {"model", model},
           {"choices", Json::array({{{"index", 0},
                                     {"message", std::move(msg)},
                                     {"logprobs", nullptr},
                                     {"finish_reason", finish_for(stop != nullptr ? *stop : "")}}})},
           {"usage", cu.json()}};
    return std::nullopt;
}

BedrockProvider::BedrockProvider(const ProviderConfig& cfg, aws::Credentials creds)
    : ConfiguredProvider(cfg), creds_(std::move(creds)), region_(cfg.region) {
    // Everything that identifies or proves the AWS account is masked in provider text.
    settings_.secrets.clear();
    for (const std::string* s : {&creds_.secret_key, &creds_.session_token, &creds_.access_key}) {
        if (!s->empty()) {
            settings_.secrets.push_back(*s);
        }
    }
}

bool BedrockProvider::enabled() const noexcept {
    return !creds_.access_key.empty() && !creds_.secret_key.empty();
}

std::optional<GatewayError> BedrockProvider::build_request(const ApiRequest& req,
                                                           std::string_view upstream_model,
                                                           UpstreamRequest& out) const {
    return build_signed(req, upstream_model, amz_now(), out);
}

std::optional<GatewayError> BedrockProvider::build_signed(const ApiRequest& req,
                                                          std::string_view upstream_model,
                                                          std::string_view amz_date,
                                                          UpstreamRequest& out) const {
    if (req.endpoint != Endpoint::chat_completions) {
        return GatewayError::bad_request(
            "Provider '" + name_ + "' (kind bedrock) serves chat completions only.", "unsupported_endpoint");
    }
    Json in;
    if (!json::parse_untrusted(req.body, in)) {
        return GatewayError::invalid_json("The request body is not valid JSON.");
    }
    Json body;
    if (auto err = openai_to_converse(in, body, cfg_.drop_unsupported_params)) {
        return err;
    }
    out.method = "POST";
    out.target = url_.path + "/model/";
    if (!append_path_segment(out.target, upstream_model)) {
        return GatewayError::bad_request(
            "The model '" + std::string(upstream_model) + "' cannot name a Bedrock model.",
            "invalid_parameter", "model");
    }
    out.target += req.stream ? "/converse-stream" : "/converse";
    out.body = json::to_text(body);
    out.headers.clear();
    add_config_headers(out);
    // The Host and Content-Type the forwarder will send are signed with the rest.
    aws::SignRequest sr;
    sr.method = out.method;
    sr.path = out.target;
    sr.payload = out.body;
    sr.headers = {{"host", host_header(settings_)},
                  {"content-type", out.content_type},
                  {"x-amz-date", std::string(amz_date)}};
    if (!creds_.session_token.empty()) {
        sr.headers.emplace_back("x-amz-security-token", creds_.session_token);
    }
    const aws::Signature sig = aws::sign(sr, creds_, region_, "bedrock", amz_date);
    out.headers.emplace_back("x-amz-date", std::string(amz_date));
    if (!creds_.session_token.empty()) {
        out.headers.emplace_back("x-amz-security-token", creds_.session_token);
    }
    out.headers.emplace_back("Authorization", sig.authorization);
    if (req.stream) {
        out.headers.emplace_back("Accept", "application/vnd.amazon.eventstream");
    }
    return std::nullopt;
}

std::unique_ptr<StreamRelay> BedrockProvider::make_stream_relay(const ApiRequest& req, StreamOutput out,
                                                                std::int64_t now) const {
    return std::make_unique<BedrockStreamRelay>(std::move(out.sink), req.model, now);
}

std::optional<GatewayError> BedrockProvider::translate_response(const ApiRequest& req, std::string& body,
                                                                std::int64_t now_unix, Answer& answer) const {
    answer = Answer{};
    Json resp;
    if (!json::parse_untrusted(body, resp) || !resp.is_object()) {
        return GatewayError::upstream_error(
            "Provider '" + name_ + "' sent an answer that is not a JSON object.",
            "upstream_invalid_response");
    }
    Json chat;
    if (auto err = converse_to_openai(resp, req.model, name_, now_unix, chat, answer.usage)) {
        return err;
    }
    answer.refused = chat_refused(chat);
    body = json::to_text(chat);
    return std::nullopt;
}

ProviderError BedrockProvider::translate_error(int status, const HeaderView& headers, std::string_view body,
                                               std::int64_t now_unix) const {
    // {"message":"..."}; the error class travels in the x-amzn-ErrorType header
    // ("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/").
    ProviderError pe{body_error(status, body), retry_after_headers(headers, now_unix)};  // scrubbed
    GatewayError& e = pe.error;
    std::string_view type = headers.find("x-amzn-errortype");
    type = type.substr(0, type.find(':'));
    if (e.code == "upstream_auth_error" || type.empty()) {
        return pe;
    }
    if (type == "ThrottlingException") {
        e.type = "rate_limit_error";
        e.code = "rate_limit_exceeded";
    } else if (type == "ServiceQuotaExceededException") {
        e.type = "rate_limit_error";
        e.code = "service_quota_exceeded";
    } else if (type == "ValidationException") {
        e.type = "invalid_request_error";
        if (e.code.empty()) {
            e.code = "validation_error";  // "Input is too long" is classified by its message
        }
    } else if (type == "ModelNotReadyException" || type == "ServiceUnavailableException" ||
               type == "InternalServerException" || type == "ModelTimeoutException") {
        e.type = "server_error";
        if (e.code.empty()) {
            e.code = "upstream_unavailable";
        }
    } else if (type == "ResourceNotFoundException") {
        e.type = "not_found_error";
        if (e.code.empty()) {
            e.code = "model_not_found";
        }
    }
    return pe;
}

bool BedrockStreamRelay::on_bytes(std::string_view bytes, std::string& out) {
    if (stopped_) {
        return false;
    }
    bool ok = true;
    const bool decoded = decoder_.feed(bytes, [this, &out, &ok](const aws::EventMessage& m) {
        if (ok) {
            ok = on_message(m, out);
        }
    });
    if (!ok) {
        stopped_ = true;
        return false;
    }
    if (!decoded) {
        stopped_ = true;
        return fail_invalid("a corrupt event-stream frame (" + decoder_.error() + ")");
    }
    return true;
}

bool BedrockStreamRelay::on_message(const aws::EventMessage& m, std::string& out) {
    const auto mt = m.headers.find(":message-type");
    if (mt != m.headers.end() && mt->second == "exception") {
        Json payload;
        if (!json::parse_untrusted(m.payload, payload)) {
            payload = Json::object();
        }
        const auto et = m.headers.find(":exception-type");
        return fail(converse_stream_error(
            et == m.headers.end() ? std::string_view() : std::string_view(et->second), payload));
    }
    const auto et = m.headers.find(":event-type");
    if (et == m.headers.end()) {
        return true;
    }
    Json data;
    if (!json::parse_untrusted(m.payload, data) || !data.is_object()) {
        return fail_invalid("a '" + et->second + "' event that is not a JSON object");
    }
    Reader r(Reader::Side::provider);
    handle(r, et->second, data, out);
    if (r.failed()) {
        return fail_invalid("'" + et->second + "' event: " + r.error_message());
    }
    return !sink_stopped() || sink_failure();
}

void BedrockStreamRelay::handle(Reader& r, const std::string& type, const Json& data, std::string& out) {
    if (!started_) {
        started_ = true;
        StreamDelta d = StreamDelta::of(StreamDelta::Kind::start);
        d.id = "chatcmpl-bedrock";
        d.name = model_;
        d.created = created_;
        push(std::move(d), out);
    }
    if (type == "contentBlockStart") {
        block_start(r, data, out);
    } else if (type == "contentBlockDelta") {
        block_delta(r, data, out);
    } else if (type == "messageStop") {
        const std::string* stop = r.string(data, "stopReason");
        StreamDelta d = StreamDelta::of(StreamDelta::Kind::finish);
        d.finish_reason = finish_for(stop != nullptr ? *stop : "");
        push(std::move(d), out);
    } else if (type == "metadata") {
        ConverseUsage cu;
        if (const Json* u = r.object(data, "usage")) {
            auto in_usage = r.at("usage");
            read_usage(r, *u, cu);
        }
        if (r.failed()) {
            return;
        }
        usage_ = cu.usage();
        StreamDelta d = StreamDelta::of(StreamDelta::Kind::usage);
        d.usage = usage_;
        d.cached_tokens = cu.cache_read;
        done_ = true;
        if (push(std::move(d), out)) {
            push_end(out);
        }
    }
}

void BedrockStreamRelay::block_start(Reader& r, const Json& data, std::string& out) {
    const Json* start = r.object(data, "start");
    if (start == nullptr) {
        return;
    }
    auto in_start = r.at("start");
    if (const Json* tu = r.object(*start, "toolUse")) {
        auto in_tu = r.at("toolUse");
        const std::string* id = r.need_string(*tu, "toolUseId");
        const std::string* name = r.need_string(*tu, "name");
        const std::int64_t index = r.integer(data, "contentBlockIndex").value_or(0);
        if (id == nullptr || name == nullptr) {
            return;
        }
        if (tool_index_.size() >= kMaxToolCalls) {
            r.fail("more tool calls than sluice relays in one answer.");
            return;
        }
        StreamDelta d = StreamDelta::of(StreamDelta::Kind::tool_call);
        d.tool = next_tool_++;
        d.id = *id;
        d.name = *name;
        tool_index_[index] = d.tool;
        push(std::move(d), out);
    }
}

void BedrockStreamRelay::block_delta(Reader& r, const Json& data, std::string& out) {
    const Json* delta = r.need_object(data, "delta");
    const std::int64_t index = r.integer(data, "contentBlockIndex").value_or(0);
    if (delta == nullptr) {
        return;
    }
    auto in_delta = r.at("delta");
    if (const std::string* text = r.string(*delta, "text")) {
        push(StreamDelta::of(StreamDelta::Kind::text, *text), out);
    } else if (const Json* tu = r.object(*delta, "toolUse")) {
        auto in_tu = r.at("toolUse");
        const std::string* input = r.string(*tu, "input");
        const auto it = tool_index_.find(index);
        if (input != nullptr && it != tool_index_.end()) {
            StreamDelta d = StreamDelta::of(StreamDelta::Kind::tool_args, *input);
            d.tool = it->second;
            push(std::move(d), out);
        }
    } else if (const Json* rc = r.object(*delta, "reasoningContent")) {
        auto in_rc = r.at("reasoningContent");
        if (const std::string* rtext = r.string(*rc, "text")) {
            push(StreamDelta::of(StreamDelta::Kind::reasoning, *rtext), out);
        }
    }
}

}  // namespace sluice
