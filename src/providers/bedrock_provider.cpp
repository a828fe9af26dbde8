#include "providers/bedrock_provider.hpp"

#include <ctime>

#include "providers/messages_translate.hpp"
#include "providers/translate_common.hpp"
#include "sse/sse.hpp"
#include "util/scrub.hpp"
#include "util/strings.hpp"

namespace sluice {

using Json = nlohmann::json;

namespace {

std::int64_t int_of(const Json& j, const char* key) {
    return j.contains(key) && j[key].is_number_integer() ? j[key].get<std::int64_t>() : 0;
}

std::optional<GatewayError> to_blocks(const Json& content, Json& blocks) {
    if (content.is_null()) {
        return std::nullopt;
    }
    if (content.is_string()) {
        if (!content.get<std::string>().empty()) {
            blocks.push_back({{"text", content}});
        }
        return std::nullopt;
    }
    for (const auto& p : content) {
        const std::string type = p.value("type", "");
        if (type == "text") {
            blocks.push_back({{"text", p.value("text", "")}});
        } else if (type == "image_url") {
            const Json& image = p.value("image_url", Json::object());
            const std::string url = image.is_string() ? image.get<std::string>() : image.value("url", "");
            const auto semi = url.find(';');
            const auto comma = url.find(',');
            if (url.rfind("data:image/", 0) != 0 || semi == std::string::npos || comma == std::string::npos) {
                return GatewayError::bad_request("Bedrock takes images as base64 data: URLs only.",
                                                 "invalid_parameter", "messages");
            }
            std::string format = url.substr(11, semi - 11);  // png, jpeg, gif, webp
            blocks.push_back({{"image", {{"format", format}, {"source", {{"bytes", url.substr(comma + 1)}}}}}});
        } else {
            return GatewayError::bad_request("Content parts of type '" + type + "' cannot be sent to Bedrock.",
                                             "unsupported_content", "messages");
        }
    }
    return std::nullopt;
}

std::string finish_for(const std::string& stop) {
    if (stop == "tool_use") return "tool_calls";
    if (stop == "max_tokens") return "length";
    if (stop == "guardrail_intervened" || stop == "content_filtered") return "content_filter";
    return "stop";
}

Usage converse_usage(const Json& u) {
    Usage out;
    out.prompt_tokens = int_of(u, "inputTokens") + int_of(u, "cacheReadInputTokens") + int_of(u, "cacheWriteInputTokens");
    out.completion_tokens = int_of(u, "outputTokens");
    out.total_tokens = out.prompt_tokens + out.completion_tokens;
    return out;
}

Json usage_json(const Json& u) {
    const Usage usage = converse_usage(u);
    return {{"prompt_tokens", usage.prompt_tokens},
            {"completion_tokens", usage.completion_tokens},
            {"total_tokens", usage.total_tokens},
            {"prompt_tokens_details", {{"cached_tokens", int_of(u, "cacheReadInputTokens")}}}};
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

std::optional<GatewayError> openai_to_converse(const Json& in, Json& out) {
    out = Json::object();
    Json system = Json::array();
    Json messages = Json::array();
    if (!in.contains("messages") || !in["messages"].is_array()) {
        return GatewayError::bad_request("messages must be an array.", "invalid_parameter", "messages");
    }
    for (const auto& m : in["messages"]) {
        const std::string role = m.value("role", "");
        Json blocks = Json::array();
        if (auto e = to_blocks(m.value("content", Json()), blocks)) {
            return e;
        }
        if (role == "system" || role == "developer") {
            for (auto& b : blocks) {
                system.push_back(std::move(b));
            }
        } else if (role == "user") {
            append_turn(messages, "user", std::move(blocks));
        } else if (role == "assistant") {
            for (const auto& call : m.value("tool_calls", Json::array())) {
                const Json fn = call.value("function", Json::object());
                Json input;
                if (auto e = tool_call_input(call, "Bedrock", input)) {
                    return e;
                }
                blocks.push_back({{"toolUse", {{"toolUseId", call.value("id", "")},
                                               {"name", fn.value("name", "")},
                                               {"input", std::move(input)}}}});
            }
            append_turn(messages, "assistant", std::move(blocks));
        } else if (role == "tool") {
            const std::string text = content_text(m.value("content", Json("")));
            append_turn(messages, "user",
                   Json::array({{{"toolResult", {{"toolUseId", m.value("tool_call_id", "")},
                                                 {"content", Json::array({{{"text", text}}})}}}}}));
        } else {
            return GatewayError::bad_request("Unsupported message role '" + role + "'.", "invalid_parameter", "messages");
        }
    }
    out["messages"] = std::move(messages);
    if (!system.empty()) {
        out["system"] = std::move(system);
    }
    Json inference = Json::object();
    for (const char* key : {"max_tokens", "max_completion_tokens"}) {
        if (in.contains(key) && in[key].is_number_integer()) {
            inference["maxTokens"] = in[key];
        }
    }
    if (in.contains("temperature") && in["temperature"].is_number()) {
        inference["temperature"] = in["temperature"];
    }
    if (in.contains("top_p") && in["top_p"].is_number()) {
        inference["topP"] = in["top_p"];
    }
    if (in.contains("stop") && !in["stop"].is_null()) {
        inference["stopSequences"] = in["stop"].is_string() ? Json::array({in["stop"]}) : in["stop"];
    }
    if (!inference.empty()) {
        out["inferenceConfig"] = std::move(inference);
    }
    if (in.contains("tools") && in["tools"].is_array() && !in["tools"].empty()) {
        Json tools = Json::array();
        for (const auto& t : in["tools"]) {
            const Json fn = t.value("function", Json::object());
            Json spec = {{"name", fn.value("name", "")},
                         {"inputSchema", {{"json", fn.value("parameters", Json{{"type", "object"}})}}}};
            if (fn.contains("description")) {
                spec["description"] = fn["description"];
            }
            tools.push_back({{"toolSpec", std::move(spec)}});
        }
        Json config = {{"tools", std::move(tools)}};
        if (in.contains("tool_choice")) {
            const Json& tc = in["tool_choice"];
            if (tc == "required") {
                config["toolChoice"] = {{"any", Json::object()}};
            } else if (tc.is_object() && tc.contains("function")) {
                config["toolChoice"] = {{"tool", {{"name", tc["function"].value("name", "")}}}};
            } else if (tc == "auto") {
                config["toolChoice"] = {{"auto", Json::object()}};
            }
            // "none" has no Converse equivalent: the tools stay declared, the choice is left to the model.
        }
        out["toolConfig"] = std::move(config);
    }
    return std::nullopt;
}

Json converse_to_openai(const Json& resp, std::string_view model, Usage& usage) {
    std::string text;
    std::string reasoning;
    Json calls = Json::array();
    const Json message = resp.value("output", Json::object()).value("message", Json::object());
    for (const auto& b : message.value("content", Json::array())) {
        if (b.contains("text")) {
            text += b["text"].get<std::string>();
        } else if (b.contains("toolUse")) {
            const Json& tu = b["toolUse"];
            calls.push_back({{"id", tu.value("toolUseId", "")},
                             {"type", "function"},
                             {"function", {{"name", tu.value("name", "")}, {"arguments", tu.value("input", Json::object()).dump()}}}});
        } else if (b.contains("reasoningContent")) {
            reasoning += b["reasoningContent"].value("reasoningText", Json::object()).value("text", "");
        }
    }
    Json msg = {{"role", "assistant"}, {"content", text.empty() && !calls.empty() ? Json(nullptr) : Json(text)}};
    if (!calls.empty()) {
        msg["tool_calls"] = std::move(calls);
    }
    if (!reasoning.empty()) {
        msg["reasoning_content"] = reasoning;
    }
    const Json u = resp.value("usage", Json::object());
    usage = converse_usage(u);
    return {{"id", "chatcmpl-bedrock"},
            {"object", "chat.completion"},
            {"created", static_cast<std::int64_t>(std::time(nullptr))},
            {"model", model},
            {"choices", Json::array({{{"index", 0}, {"message", std::move(msg)}, {"logprobs", nullptr},
                                      {"finish_reason", finish_for(resp.value("stopReason", ""))}}})},
            {"usage", usage_json(u)}};
}

BedrockProvider::BedrockProvider(const ProviderConfig& cfg, aws::Credentials creds)
    : OpenAiProvider(cfg), creds_(std::move(creds)), region_(cfg.region) {}

bool BedrockProvider::enabled() const noexcept {
    return !creds_.access_key.empty() && !creds_.secret_key.empty();
}

std::optional<GatewayError> BedrockProvider::build_request(const ApiRequest& req, std::string_view upstream_model,
                                                           UpstreamRequest& out) const {
    return build_signed(req, upstream_model, amz_now(), out);
}

std::optional<GatewayError> BedrockProvider::build_signed(const ApiRequest& req, std::string_view upstream_model,
                                                          std::string_view amz_date, UpstreamRequest& out) const {
    if (req.endpoint != Endpoint::chat_completions && req.endpoint != Endpoint::messages) {
        return GatewayError::bad_request("Provider '" + name_ + "' (kind bedrock) serves chat completions only.",
                                         "unsupported_endpoint");
    }
    Json chat = Json::parse(req.body, nullptr, false);
    if (req.endpoint == Endpoint::messages) {
        // The front door: Messages → chat → Converse.
        const Json in = chat;
        if (auto err = messages_to_chat_request(in, upstream_model, chat)) {
            return err;
        }
    }
    Json body;
    if (auto err = openai_to_converse(chat, body)) {
        return err;
    }
    out.method = "POST";
    out.target = url_.path + "/model/" + uri_encode_segment(upstream_model) +
                 (req.stream ? "/converse-stream" : "/converse");
    out.body = body.dump();
    out.headers.clear();
    for (const auto& [k, v] : cfg_.headers) {
        out.headers.emplace_back(k, v);
    }
    // The Host and Content-Type the forwarder will send are signed with the rest.
    aws::SignRequest sr;
    sr.method = out.method;
    sr.path = out.target;
    sr.payload = out.body;
    sr.headers = {{"host", host_header(settings_)}, {"content-type", out.content_type},
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

std::unique_ptr<StreamRelay> BedrockProvider::make_stream_relay(const ApiRequest& req) const {
    const bool messages = req.endpoint == Endpoint::messages;
    auto relay = std::make_unique<BedrockStreamRelay>(req.model, req.client_wants_usage || messages,
                                                      static_cast<std::int64_t>(std::time(nullptr)));
    if (messages) {
        return std::make_unique<ChainedMessagesStream>(std::move(relay), req.model);
    }
    return relay;
}

Usage BedrockProvider::parse_usage(std::string_view body) const {
    const Json j = Json::parse(body, nullptr, false);
    return j.is_discarded() ? Usage{} : converse_usage(j.value("usage", Json::object()));
}

std::optional<GatewayError> BedrockProvider::translate_response(const ApiRequest& req, std::string& body,
                                                                Usage& usage) const {
    const Json resp = Json::parse(body, nullptr, false);
    if (resp.is_discarded() || !resp.is_object()) {
        return GatewayError::upstream_error("Provider '" + name_ + "' sent an answer that is not JSON.");
    }
    const Json chat = converse_to_openai(resp, req.model, usage);
    body = req.endpoint == Endpoint::messages ? chat_to_messages_response(chat, req.model, usage).dump()
                                              : chat.dump();
    return std::nullopt;
}

GatewayError BedrockProvider::translate_error(int status, std::string_view body) const {
    // {"message":"..."} (the error class travels in the x-amzn-ErrorType header)
    GatewayError e = OpenAiProvider::translate_error(status, body);
    e.message = scrub_secrets(e.message, creds_.secret_key);
    return e;
}

void BedrockStreamRelay::emit(const Json& delta, const Json& finish, std::string& out) {
    Json chunk = {{"id", "chatcmpl-bedrock"},
                  {"object", "chat.completion.chunk"},
                  {"created", created_},
                  {"model", model_},
                  {"choices", Json::array({{{"index", 0}, {"delta", delta}, {"logprobs", nullptr},
                                            {"finish_reason", finish}}})}};
    if (client_wants_usage_) {
        chunk["usage"] = nullptr;
    }
    sse::encode_data(chunk.dump(), out);
}

bool BedrockStreamRelay::on_bytes(std::string_view bytes, std::string& out) {
    if (failed_) {
        return false;
    }
    const bool ok = decoder_.feed(bytes, [this, &out](const aws::EventMessage& m) { on_message(m, out); });
    if (!ok) {
        failed_ = true;
    }
    return ok && !failed_;
}

void BedrockStreamRelay::on_message(const aws::EventMessage& m, std::string& out) {
    const auto mt = m.headers.find(":message-type");
    if (mt != m.headers.end() && mt->second == "exception") {
        const Json payload = Json::parse(m.payload, nullptr, false);
        GatewayError e;
        const auto et = m.headers.find(":exception-type");
        e.code = et == m.headers.end() ? "upstream_error" : et->second;
        e.type = e.code == "throttlingException" ? "rate_limit_error" : "server_error";
        e.message = payload.is_discarded() ? "The provider reported an error mid-stream."
                                           : payload.value("message", "The provider reported an error mid-stream.");
        sse::encode_data(e.to_json(), out);
        failed_ = true;
        return;
    }
    const auto et = m.headers.find(":event-type");
    if (et == m.headers.end()) {
        return;
    }
    const Json data = Json::parse(m.payload, nullptr, false);
    if (data.is_discarded()) {
        return;
    }
    const std::string& type = et->second;
    if (!started_) {
        started_ = true;
        emit({{"role", "assistant"}, {"content", ""}}, nullptr, out);
    }
    if (type == "contentBlockStart") {
        const Json start = data.value("start", Json::object());
        if (start.contains("toolUse")) {
            const int tool = next_tool_++;
            tool_index_[data.value("contentBlockIndex", 0)] = tool;
            emit({{"tool_calls", Json::array({{{"index", tool}, {"id", start["toolUse"].value("toolUseId", "")},
                                               {"type", "function"},
                                               {"function", {{"name", start["toolUse"].value("name", "")},
                                                             {"arguments", ""}}}}})}},
                 nullptr, out);
        }
    } else if (type == "contentBlockDelta") {
        const Json delta = data.value("delta", Json::object());
        if (delta.contains("text")) {
            emit({{"content", delta["text"]}}, nullptr, out);
        } else if (delta.contains("toolUse")) {
            const auto it = tool_index_.find(data.value("contentBlockIndex", 0));
            if (it != tool_index_.end()) {
                emit({{"tool_calls", Json::array({{{"index", it->second},
                                                   {"function", {{"arguments", delta["toolUse"].value("input", "")}}}}})}},
                     nullptr, out);
            }
        } else if (delta.contains("reasoningContent") && delta["reasoningContent"].contains("text")) {
            emit({{"reasoning_content", delta["reasoningContent"]["text"]}}, nullptr, out);
        }
    } else if (type == "messageStop") {
        emit(Json::object(), finish_for(data.value("stopReason", "")), out);
    } else if (type == "metadata") {
        const Json u = data.value("usage", Json::object());
        usage_ = converse_usage(u);
        if (client_wants_usage_) {
            Json chunk = {{"id", "chatcmpl-bedrock"}, {"object", "chat.completion.chunk"}, {"created", created_},
                          {"model", model_}, {"choices", Json::array()}, {"usage", usage_json(u)}};
            sse::encode_data(chunk.dump(), out);
        }
        sse::encode_data("[DONE]", out);
        done_ = true;
    }
}

}  // namespace sluice
