#include "providers/gemini_provider.hpp"

#include <ctime>
#include <map>

#include "json/json_dom.hpp"
#include "providers/translate_common.hpp"
#include "sse/sse.hpp"
#include "util/base64.hpp"
#include "util/url.hpp"

namespace sluice {

using Json = nlohmann::json;
using json::Reader;
using json::Type;

namespace {

/// Gemini's schema dialect is an OpenAPI subset: keys it rejects are removed (recursively; the
/// schema came from a depth-capped body).
Json gemini_schema(const Json& schema) {
    if (schema.is_array()) {
        Json out = Json::array();
        for (const auto& v : schema) {
            out.push_back(gemini_schema(v));
        }
        return out;
    }
    if (!schema.is_object()) {
        return schema;
    }
    Json out = Json::object();
    for (const auto& item : schema.items()) {
        const std::string& k = item.key();
        if (k == "$schema" || k == "additionalProperties" || k == "strict" || k == "$id") {
            continue;
        }
        out[k] = gemini_schema(item.value());
    }
    return out;
}

bool image_part(std::string_view url, Json& part) {
    std::string_view media;
    std::string_view data;
    if (split_data_url(url, media, data)) {
        part = {{"inlineData", {{"mimeType", std::string(media)}, {"data", std::string(data)}}}};
        return true;
    }
    if (url.rfind("https://", 0) == 0 || url.rfind("gs://", 0) == 0) {
        std::string mime = "image/jpeg";
        if (url.ends_with(".png")) {
            mime = "image/png";
        }
        if (url.ends_with(".webp")) {
            mime = "image/webp";
        }
        part = {{"fileData", {{"mimeType", mime}, {"fileUri", std::string(url)}}}};
        return true;
    }
    return false;
}

/// A message's content → Gemini parts. System instructions take text only.
void to_parts(Reader& r, const TargetRules& t, const ChatMessage& m, bool system, Json& parts) {
    if (m.content_is_text) {
        if (!m.text.empty()) {
            parts.push_back({{"text", std::string(m.text)}});
        }
        return;
    }
    for (const ChatPart& p : m.parts) {
        const std::string path = part_path(m.index, p.index);
        if (p.kind == ChatPart::Kind::text || p.kind == ChatPart::Kind::refusal) {
            parts.push_back({{"text", std::string(p.text)}});
            continue;
        }
        if (system) {
            refuse(r, t, path, "system instructions take text only");
            return;
        }
        switch (p.kind) {
            case ChatPart::Kind::image: {
                Json part;
                if (!image_part(p.url, part)) {
                    r.fail_at(path + ".image_url.url",
                              "expected an https or gs:// URL or a base64 data: URL.");
                    return;
                }
                parts.push_back(std::move(part));
                break;
            }
            case ChatPart::Kind::audio:
                parts.push_back({{"inlineData",
                                  {{"mimeType", "audio/" + std::string(p.audio_format)},
                                   {"data", std::string(p.audio_data)}}}});
                break;
            case ChatPart::Kind::file: {
                std::string_view media;
                std::string_view data;
                if (!split_data_url(p.file_data, media, data)) {
                    refuse(r, t, path,
                           "files are sent as base64 data: URLs in file.file_data (file_id is OpenAI's)");
                    return;
                }
                parts.push_back(
                    {{"inlineData", {{"mimeType", std::string(media)}, {"data", std::string(data)}}}});
                break;
            }
            default:
                refuse(r, t, path, "content parts of type '" + std::string(p.type) + "' have no Gemini form");
                return;
        }
    }
}

std::string finish_for(std::string_view reason, bool tool_calls) {
    if (reason == "MAX_TOKENS") {
        return "length";
    }
    if (reason == "SAFETY" || reason == "RECITATION" || reason == "BLOCKLIST" ||
        reason == "PROHIBITED_CONTENT" || reason == "SPII" || reason == "IMAGE_SAFETY") {
        return "content_filter";
    }
    return tool_calls ? "tool_calls" : "stop";
}

/// Gemini usageMetadata, read strictly.
struct GeminiUsage {
    std::int64_t prompt = 0;
    std::int64_t candidates = 0;
    std::int64_t thoughts = 0;
    std::int64_t cached = 0;
    Usage usage() const {
        Usage u;
        u.prompt_tokens = prompt;
        u.completion_tokens = candidates + thoughts;
        u.total_tokens = u.prompt_tokens + u.completion_tokens;
        return u;
    }
    Json json() const {
        const Usage u = usage();
        return {{"prompt_tokens", u.prompt_tokens},
                {"completion_tokens", u.completion_tokens},
                {"total_tokens", u.total_tokens},
                {"prompt_tokens_details", {{"cached_tokens", cached}}},
                {"completion_tokens_details", {{"reasoning_tokens", thoughts}}}};
    }
};

void read_usage(Reader& r, const Json& meta, GeminiUsage& out) {
    if (!r.expect(meta, Type::object)) {
        return;
    }
    for (const auto& [key, slot] :
         {std::pair{"promptTokenCount", &out.prompt}, std::pair{"candidatesTokenCount", &out.candidates},
          std::pair{"thoughtsTokenCount", &out.thoughts},
          std::pair{"cachedContentTokenCount", &out.cached}}) {
        if (const auto v = r.integer(meta, key)) {
            if (*v < 0) {
                r.fail(key, "token counts are never negative.");
            }
            *slot = *v;
        }
    }
}

/// One candidate's parts, read: text, thoughts and function calls (OpenAI tool calls).
struct CandidateParts {
    std::string text;
    std::string reasoning;
    Json calls = Json::array();
    std::string finish_reason;
    bool any = false;
};

/// A functionCall part → an OpenAI tool call (`index` numbers it; with_index for stream deltas).
Json tool_call(Reader& r, const Json& part, const Json& fc, int index, bool with_index) {
    const std::string* id = r.string(fc, "id");
    const std::string* name = r.need_string(fc, "name");
    const Json* args = r.object(fc, "args");
    Json call = {{"id", id != nullptr ? *id : "call_" + std::to_string(index)},
                 {"type", "function"},
                 {"function",
                  {{"name", name != nullptr ? *name : std::string()},
                   {"arguments", args != nullptr ? json::to_text(*args) : "{}"}}}};
    if (const std::string* sig = r.string(part, "thoughtSignature")) {
        call["extra_content"] = {{"google", {{"thought_signature", *sig}}}};
    }
    if (with_index) {
        call["index"] = index;
    }
    return call;
}

void read_candidate(Reader& r, const Json& resp, CandidateParts& out, int& next_tool, bool with_index) {
    const Json* candidates = r.array(resp, "candidates");
    if (candidates != nullptr && !candidates->empty()) {
        auto in_candidates = r.at("candidates");
        auto in_first = r.at(std::size_t{0});
        const Json& c = (*candidates)[0];
        if (!r.expect(c, Type::object)) {
            return;
        }
        if (const std::string* reason = r.string(c, "finishReason")) {
            out.finish_reason = *reason;
        }
        const Json* content = r.object(c, "content");
        if (content == nullptr) {
            return;
        }
        auto in_content = r.at("content");
        const Json* parts = r.array(*content, "parts");
        if (parts == nullptr) {
            return;
        }
        auto in_parts = r.at("parts");
        for (std::size_t i = 0; i < parts->size() && r.ok(); ++i) {
            auto in_part = r.at(i);
            const Json& p = (*parts)[i];
            if (!r.expect(p, Type::object)) {
                return;
            }
            out.any = true;
            if (const Json* fc = r.object(p, "functionCall")) {
                auto in_fc = r.at("functionCall");
                out.calls.push_back(tool_call(r, p, *fc, next_tool++, with_index));
            } else if (const std::string* text = r.string(p, "text")) {
                (r.boolean(p, "thought").value_or(false) ? out.reasoning : out.text) += *text;
            }
        }
    } else if (const Json* feedback = r.object(resp, "promptFeedback")) {
        auto in_feedback = r.at("promptFeedback");
        if (r.string(*feedback, "blockReason") != nullptr) {
            out.finish_reason = "SAFETY";  // the prompt itself was blocked
        }
    }
}

GatewayError gemini_stream_error(const Json& err) {
    // {"error":{"code":503,"message":"...","status":"UNAVAILABLE"}}
    GatewayError e;
    e.source = ErrorSource::upstream;
    e.message = std::string(json::string_or(err, "message", "The provider reported an error mid-stream."));
    const std::string status(json::string_or(err, "status", "upstream_error"));
    e.code = status;
    e.type = "server_error";
    if (status == "RESOURCE_EXHAUSTED") {
        e.status = 429;
        e.type = "rate_limit_error";
    } else if (status == "UNAVAILABLE") {
        e.status = 503;
    } else if (status == "INTERNAL") {
        e.status = 500;
    } else {
        e.status = 502;
    }
    return e;
}

}  // namespace

std::optional<GatewayError> openai_to_gemini(const Json& in, Json& out, bool drop_unsupported) {
    Reader r;
    ChatRequestView v;
    read_chat_request(in, r, v);
    if (r.failed()) {
        return r.client_error();
    }
    const TargetRules t{"Gemini", drop_unsupported};
    refuse_openai_only(r, t, v, SamplingSupport{true, true, true});
    refuse_message_names(r, t, v);
    out = Json::object();
    Json system = Json::array();
    Json contents = Json::array();
    std::map<std::string, std::string, std::less<>> call_names;  // tool_call_id → function name
    for (const ChatMessage& m : v.messages) {
        if (r.failed()) {
            break;
        }
        Json parts = Json::array();
        if (m.role == "system" || m.role == "developer") {
            to_parts(r, t, m, true, parts);
            for (auto& p : parts) {
                system.push_back(std::move(p));
            }
        } else if (m.role == "user") {
            to_parts(r, t, m, false, parts);
            append_turn(contents, "user", std::move(parts), "parts");
        } else if (m.role == "assistant") {
            // Anthropic thinking blocks (with their signatures) mean nothing to Gemini: left out.
            to_parts(r, t, m, false, parts);
            for (const ChatToolCall& call : m.tool_calls) {
                Json args;
                if (!tool_call_input(r, m, call, "Gemini", args)) {
                    break;
                }
                call_names[std::string(call.id)] = std::string(call.name);
                Json part = {{"functionCall", {{"name", std::string(call.name)}, {"args", std::move(args)}}}};
                // The signature Gemini gave this call, kept by the client, goes back with it.
                if (call.extra_content != nullptr) {
                    if (const Json* google = json::find(*call.extra_content, "google")) {
                        const Json* sig = json::find(*google, "thought_signature");
                        if (sig != nullptr && sig->is_string()) {
                            part["thoughtSignature"] = *sig;
                        } else if (sig != nullptr) {
                            r.fail_at(
                                call_path(m.index, call.index) + ".extra_content.google.thought_signature",
                                "expected a string.");
                        }
                    }
                }
                parts.push_back(std::move(part));
            }
            append_turn(contents, "model", std::move(parts), "parts");
        } else if (m.role == "tool") {
            if (!m.content_is_text) {
                for (const ChatPart& p : m.parts) {
                    if (p.kind != ChatPart::Kind::text) {
                        refuse(r, t, part_path(m.index, p.index), "tool results travel as text only");
                    }
                }
            }
            const auto name = call_names.find(m.tool_call_id);
            const std::string text = message_text(m);
            Json response;
            if (!parse_embedded_json(text, response) || !response.is_object()) {
                response = {{"content", text}};
            }
            append_turn(
                contents, "user",
                Json::array(
                    {{{"functionResponse",
                       {{"name", name == call_names.end() ? std::string(m.tool_call_id) : name->second},
                        {"response", std::move(response)}}}}}),
                "parts");
        }
    }
    out["contents"] = std::move(contents);
    if (!system.empty()) {
        out["systemInstruction"] = {{"parts", std::move(system)}};
    }
    if (json::find(in, "tools") != nullptr) {
        Json decls = Json::array();
        for (const ChatTool& tool : v.tools) {
            if (!tool.function) {
                refuse(r, t, "tools[" + std::to_string(tool.index) + "].type",
                       "only function tools are translated");
                break;
            }
            Json d = {{"name", std::string(tool.name)}};
            if (tool.description != nullptr) {
                d["description"] = *tool.description;
            }
            if (tool.parameters != nullptr) {
                d["parameters"] = gemini_schema(*tool.parameters);
            }
            decls.push_back(std::move(d));
        }
        out["tools"] = Json::array({{{"functionDeclarations", std::move(decls)}}});
    }
    if (v.tool_choice.mode != ChatToolChoice::Mode::none_set) {
        Json cfg;
        switch (v.tool_choice.mode) {
            case ChatToolChoice::Mode::none: cfg = {{"mode", "NONE"}}; break;
            case ChatToolChoice::Mode::required: cfg = {{"mode", "ANY"}}; break;
            case ChatToolChoice::Mode::function:
                cfg = {{"mode", "ANY"},
                       {"allowedFunctionNames", Json::array({std::string(v.tool_choice.function)})}};
                break;
            default: cfg = {{"mode", "AUTO"}}; break;
        }
        out["toolConfig"] = {{"functionCallingConfig", cfg}};
    }
    if (v.parallel_tool_calls && !*v.parallel_tool_calls) {
        refuse(r, t, "parallel_tool_calls", "Gemini cannot be told to make one call at a time");
    }
    if (v.service_tier != nullptr) {
        refuse(r, t, "service_tier", "service tiers are OpenAI's");
    }
    Json gen = Json::object();
    if (v.temperature) {
        gen["temperature"] = *v.temperature;
    }
    if (v.top_p) {
        gen["topP"] = *v.top_p;
    }
    if (v.seed) {
        gen["seed"] = *v.seed;
    }
    if (v.presence_penalty) {
        gen["presencePenalty"] = *v.presence_penalty;
    }
    if (v.frequency_penalty) {
        gen["frequencyPenalty"] = *v.frequency_penalty;
    }
    if (v.n) {
        gen["candidateCount"] = *v.n;
    }
    if (v.max_tokens) {
        gen["maxOutputTokens"] = *v.max_tokens;
    }
    if (v.stop_set) {
        Json stop = Json::array();
        for (const auto s : v.stop) {
            stop.push_back(std::string(s));
        }
        gen["stopSequences"] = std::move(stop);
    }
    if (v.response_format == "json_object") {
        gen["responseMimeType"] = "application/json";
    } else if (v.response_format == "json_schema") {
        gen["responseMimeType"] = "application/json";
        gen["responseJsonSchema"] = v.response_schema != nullptr ? *v.response_schema : Json::object();
    }
    if (v.reasoning_effort != nullptr) {
        std::int64_t budget = 0;
        if (!reasoning_budget(*v.reasoning_effort, 1024, 8192, 24576, budget)) {
            r.fail_at("reasoning_effort", "expected none, minimal, low, medium or high.");
        }
        gen["thinkingConfig"] = {{"thinkingBudget", budget}, {"includeThoughts", budget > 0}};
    }
    if (!gen.empty()) {
        out["generationConfig"] = std::move(gen);
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

std::optional<GatewayError> gemini_to_openai(const Json& resp, std::string_view model,
                                             std::string_view provider, std::int64_t created, Json& out,
                                             Usage& usage) {
    Reader r(Reader::Side::provider);
    if (!r.expect(resp, Type::object)) {
        return r.provider_error(provider);
    }
    CandidateParts c;
    int next_tool = 0;
    read_candidate(r, resp, c, next_tool, false);
    GeminiUsage gu;
    if (const Json* meta = r.object(resp, "usageMetadata")) {
        auto in_meta = r.at("usageMetadata");
        read_usage(r, *meta, gu);
    }
    const std::string* response_id = r.string(resp, "responseId");
    const std::string* version = r.string(resp, "modelVersion");
    if (r.failed()) {
        return r.provider_error(provider);
    }
    const bool has_calls = !c.calls.empty();
    Json message = {{"role", "assistant"},
                    {"content", c.text.empty() && has_calls ? Json(nullptr) : Json(c.text)}};
    if (has_calls) {
        message["tool_calls"] = std::move(c.calls);
    }
    if (!c.reasoning.empty()) {
        message["reasoning_content"] = c.reasoning;
    }
    usage = gu.usage();
    out = {{"id", "chatcmpl-" + (response_id != nullptr ? *response_id : std::string("gemini"))},
           {"object", "chat.completion"},
           {"created", created},
           {"model", version != nullptr ? *version : std::string(model)},
           {"choices", Json::array({{{"index", 0},
                                     {"message", std::move(message)},
                                     {"logprobs", nullptr},
                                     {"finish_reason", finish_for(c.finish_reason, has_calls)}}})},
           {"usage", gu.json()}};
    return std::nullopt;
}

void GeminiProvider::add_headers(UpstreamRequest& out) const {
    if (!cfg_.api_key.empty()) {
        out.headers.emplace_back("x-goog-api-key", cfg_.api_key);  // never ?key= (it leaks into logs)
    }
    add_config_headers(out);
}

namespace {
std::string api_root(const Url& url) {
    std::string path = url.path;
    if (path.size() < 7 || path.compare(path.size() - 7, 7, "/v1beta") != 0) {
        path += "/v1beta";
    }
    return path;
}

/// An embeddings request → batchEmbedContents.
std::optional<GatewayError> embeddings_body(const Json& in, const std::string& model, Json& body) {
    Reader r;
    if (!r.expect(in, Type::object)) {
        return r.client_error();
    }
    r.only(in, {"model", "input", "dimensions", "encoding_format", "user"});
    const Json* input = json::find(in, "input");
    if (input == nullptr) {
        r.need_string(in, "input");  // records "missing"
        return r.client_error();
    }
    const auto dims = r.integer(in, "dimensions");
    if (const std::string* fmt = r.string(in, "encoding_format");
        fmt != nullptr && *fmt != "float" && *fmt != "base64") {
        r.fail("encoding_format", "expected float or base64.");
    }
    r.string(in, "user");
    Json requests = Json::array();
    const auto add = [&](const Json& text) {
        Json req = {{"model", "models/" + model}, {"content", {{"parts", Json::array({{{"text", text}}})}}}};
        if (dims) {
            req["outputDimensionality"] = *dims;
        }
        requests.push_back(std::move(req));
    };
    if (input->is_string()) {
        add(*input);
    } else if (input->is_array()) {
        auto in_input = r.at("input");
        for (std::size_t i = 0; i < input->size() && r.ok(); ++i) {
            auto in_item = r.at(i);
            if (!(*input)[i].is_string()) {
                r.unsupported_at(r.path_with({}), "Gemini embeds text inputs only (not token arrays).");
                break;
            }
            add((*input)[i]);
        }
    } else {
        r.wrong_type("input", "a string or an array of strings", *input);
    }
    if (r.failed()) {
        return r.client_error();
    }
    body = {{"requests", std::move(requests)}};
    return std::nullopt;
}
}  // namespace

std::optional<GatewayError> GeminiProvider::build_request(const ApiRequest& req,
                                                          std::string_view upstream_model,
                                                          UpstreamRequest& out) const {
    if (req.endpoint != Endpoint::chat_completions && req.endpoint != Endpoint::embeddings) {
        return GatewayError::bad_request("Provider '" + name_ +
                                             "' (kind gemini) serves chat completions and "
                                             "embeddings, not " +
                                             std::string(endpoint_name(req.endpoint)) + ".",
                                         "unsupported_endpoint");
    }
    Json in;
    if (!json::parse_untrusted(req.body, in)) {
        return GatewayError::invalid_json("The request body is not valid JSON.");
    }
    const std::string model(upstream_model.rfind("models/", 0) == 0 ? upstream_model.substr(7)
                                                                    : upstream_model);
    out.method = "POST";
    out.headers.clear();
    add_headers(out);
    // The model is a path segment of its own: models/{model}:method.
    out.target = api_root(url_) + "/models/";
    if (!append_path_segment(out.target, model)) {
        return GatewayError::bad_request("The model '" + model + "' cannot be sent to Gemini.",
                                         "invalid_parameter", "model");
    }
    Json body;
    if (req.endpoint == Endpoint::embeddings) {
        if (auto err = embeddings_body(in, model, body)) {
            return err;
        }
        out.target += ":batchEmbedContents";
    } else {
        if (auto err = openai_to_gemini(in, body, cfg_.drop_unsupported_params)) {
            return err;
        }
        out.target += req.stream ? ":streamGenerateContent?alt=sse" : ":generateContent";
    }
    out.body = json::to_text(body);
    return std::nullopt;
}

std::optional<UpstreamRequest> GeminiProvider::models_request() const {
    UpstreamRequest r = get_request(api_root(url_) + "/models?pageSize=1000");
    add_headers(r);
    return r;
}

std::vector<std::string> GeminiProvider::parse_models(std::string_view body) const {
    std::vector<std::string> ids;
    Json j;
    if (!json::parse_untrusted(body, j)) {
        return ids;
    }
    const Json* models = json::find(j, "models");
    if (models == nullptr || !models->is_array()) {
        return ids;
    }
    for (const auto& m : *models) {
        const std::string_view name = json::string_or(m, "name");
        if (!name.empty()) {
            ids.emplace_back(name.rfind("models/", 0) == 0 ? name.substr(7) : name);
        }
    }
    return ids;
}

std::unique_ptr<StreamRelay> GeminiProvider::make_stream_relay(const ApiRequest& req, StreamOutput out,
                                                               std::int64_t now) const {
    return std::make_unique<GeminiStreamRelay>(std::move(out.sink), req.model, now);
}

std::optional<GatewayError> GeminiProvider::translate_response(const ApiRequest& req, std::string& body,
                                                               std::int64_t now_unix, Answer& answer) const {
    answer = Answer{};
    Json resp;
    if (!json::parse_untrusted(body, resp) || !resp.is_object()) {
        return GatewayError::upstream_error(
            "Provider '" + name_ + "' sent an answer that is not a JSON object.",
            "upstream_invalid_response");
    }
    if (req.endpoint == Endpoint::embeddings) {
        Json in;
        json::parse_untrusted(req.body, in);
        const bool b64 = json::string_or(in, "encoding_format", "float") == "base64";
        Reader r(Reader::Side::provider);
        Json data = Json::array();
        if (const Json* list = r.array(resp, "embeddings")) {
            auto in_list = r.at("embeddings");
            for (std::size_t i = 0; i < list->size() && r.ok(); ++i) {
                auto in_item = r.at(i);
                const Json& e = (*list)[i];
                if (!r.expect(e, Type::object)) {
                    break;
                }
                const Json* values = r.need_array(e, "values");
                if (values == nullptr) {
                    break;
                }
                auto in_values = r.at("values");
                std::vector<float> floats;
                floats.reserve(values->size());
                for (std::size_t k = 0; k < values->size(); ++k) {
                    auto in_value = r.at(k);
                    if (!r.expect((*values)[k], Type::number)) {
                        break;
                    }
                    floats.push_back(static_cast<float>(json::number_or((*values)[k], 0.0)));
                }
                Json item = {{"object", "embedding"}, {"index", i}};
                if (b64) {
                    item["embedding"] = base64_floats(floats);
                } else {
                    item["embedding"] = *values;
                }
                data.push_back(std::move(item));
            }
        }
        if (r.failed()) {
            return r.provider_error(name_);
        }
        // batchEmbedContents reports no token counts.
        body = json::to_text(Json{{"object", "list"},
                                  {"data", std::move(data)},
                                  {"model", req.model},
                                  {"usage", {{"prompt_tokens", 0}, {"total_tokens", 0}}}});
        return std::nullopt;
    }
    Json chat;
    if (auto err = gemini_to_openai(resp, req.model, name_, now_unix, chat, answer.usage)) {
        return err;
    }
    answer.refused = chat_refused(chat);
    body = json::to_text(chat);
    return std::nullopt;
}

namespace {

/// google.protobuf.Duration text ("33s", "0.5s") as milliseconds; nullopt when it is not one.
std::optional<std::chrono::milliseconds> protobuf_duration(std::string_view d) {
    if (d.size() < 2 || d.size() > 24 || d.back() != 's') {
        return std::nullopt;
    }
    d.remove_suffix(1);
    std::int64_t whole = 0;
    std::int64_t frac_ms = 0;
    std::size_t i = 0;
    constexpr std::int64_t kMaxSeconds = 86400LL * 365;
    for (; i < d.size() && d[i] >= '0' && d[i] <= '9'; ++i) {
        whole = whole * 10 + (d[i] - '0');
        if (whole > kMaxSeconds) {
            return std::nullopt;  // (also keeps the sum far from overflowing)
        }
    }
    if (i == 0) {
        return std::nullopt;
    }
    if (i < d.size()) {
        if (d[i] != '.' || i + 1 == d.size()) {
            return std::nullopt;
        }
        std::int64_t scale = 100;
        for (++i; i < d.size(); ++i) {
            if (d[i] < '0' || d[i] > '9') {
                return std::nullopt;
            }
            frac_ms += (d[i] - '0') * scale;
            scale /= 10;
        }
    }
    return std::chrono::milliseconds(whole * 1000 + frac_ms);
}

/// The retryDelay of a google.rpc.RetryInfo in an error's details.
std::optional<std::chrono::milliseconds> retry_info(const Json& err) {
    const Json* details = json::find(err, "details");
    if (details == nullptr || !details->is_array()) {
        return std::nullopt;
    }
    for (const Json& d : *details) {
        if (d.is_object() &&
            json::string_or(d, "@type").find("google.rpc.RetryInfo") != std::string_view::npos) {
            return protobuf_duration(json::string_or(d, "retryDelay"));
        }
    }
    return std::nullopt;
}

}  // namespace

ProviderError GeminiProvider::translate_error(int status, const HeaderView& headers, std::string_view body,
                                              std::int64_t now_unix) const {
    // {"error":{"code":429,"message":"...","status":"RESOURCE_EXHAUSTED",
    //           "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"33s"}]}}
    ProviderError pe{body_error(status, body), retry_after_headers(headers, now_unix)};
    GatewayError& e = pe.error;
    Json j;
    if (e.code != "upstream_auth_error" && json::parse_untrusted(body, j)) {
        if (const Json* err = json::find(j, "error"); err != nullptr && err->is_object()) {
            if (!pe.retry_after) {
                pe.retry_after = retry_info(*err);  // Gemini's own hint, when no header says
            }
            std::string code(json::string_or(*err, "status"));
            for (auto& c : code) {
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            }
            if (!code.empty()) {
                e.code = scrub(code, 64);
            }
            if (status == 429) {
                e.type = "rate_limit_error";
            }
        }
    }
    return pe;
}

bool GeminiStreamRelay::on_event(const sse::Event& ev, std::string& out) {
    if (!ev.has_data) {
        return true;
    }
    Json resp;
    if (!json::parse_untrusted(ev.data, resp) || !resp.is_object()) {
        return fail_invalid("a chunk that is not a JSON object");
    }
    if (const Json* err = json::find(resp, "error")) {
        return fail(gemini_stream_error(*err));
    }
    Reader r(Reader::Side::provider);
    const std::string* response_id = r.string(resp, "responseId");
    GeminiUsage gu;
    const Json* meta = r.object(resp, "usageMetadata");
    if (meta != nullptr) {
        auto in_meta = r.at("usageMetadata");
        read_usage(r, *meta, gu);
    }
    CandidateParts c;
    read_candidate(r, resp, c, next_tool_, true);
    if (r.failed()) {
        return fail_invalid(r.error_message());
    }
    if (!started_) {
        started_ = true;
        StreamDelta d = StreamDelta::of(StreamDelta::Kind::start);
        d.id = response_id != nullptr ? "chatcmpl-" + *response_id : "chatcmpl-gemini";
        d.name = model_;
        d.created = created_;
        push(std::move(d), out);
    }
    if (meta != nullptr) {
        usage_ = gu.usage();
        StreamDelta d = StreamDelta::of(StreamDelta::Kind::usage);
        d.usage = usage_;
        d.cached_tokens = gu.cached;
        d.reasoning_tokens = gu.thoughts;
        usage_delta_ = std::move(d);
    }
    if (!c.reasoning.empty()) {
        push(StreamDelta::of(StreamDelta::Kind::reasoning, std::move(c.reasoning)), out);
    }
    if (!c.text.empty()) {
        push(StreamDelta::of(StreamDelta::Kind::text, std::move(c.text)), out);
    }
    push_calls(c.calls, out);
    if (!c.finish_reason.empty() && !finish_sent_) {
        finish_sent_ = true;
        StreamDelta d = StreamDelta::of(StreamDelta::Kind::finish);
        d.finish_reason = finish_for(c.finish_reason, next_tool_ > 0);
        push(std::move(d), out);
    }
    return !sink_stopped() || sink_failure();
}

void GeminiStreamRelay::push_calls(const Json& calls, std::string& out) {
    Reader r(Reader::Side::provider);  // the calls tool_call() built above: every field is there
    for (const Json& call : calls) {
        const Json* fn = r.object(call, "function");
        const std::string* id = r.string(call, "id");
        const std::string* name = fn != nullptr ? r.string(*fn, "name") : nullptr;
        const std::string* args = fn != nullptr ? r.string(*fn, "arguments") : nullptr;
        StreamDelta d =
            StreamDelta::of(StreamDelta::Kind::tool_call, args != nullptr ? *args : std::string());
        d.tool = static_cast<int>(r.integer(call, "index").value_or(0));
        d.id = id != nullptr ? *id : std::string();
        d.name = name != nullptr ? *name : std::string();
        if (const Json* extra = json::find(call, "extra_content")) {
            d.extra_content = json::to_text(*extra);
        }
        push(std::move(d), out);
    }
}

bool GeminiStreamRelay::on_end(std::string& out) {
    if (!started_) {
        return true;  // nothing arrived: the forwarder reports the empty stream as an error
    }
    if (!finish_sent_) {
        finish_sent_ = true;
        StreamDelta d = StreamDelta::of(StreamDelta::Kind::finish);
        d.finish_reason = finish_for("", next_tool_ > 0);
        push(std::move(d), out);
    }
    if (usage_delta_) {
        push(std::move(*usage_delta_), out);
        usage_delta_.reset();
    }
    done_ = true;
    return push_end(out) || sink_failure();
}

}  // namespace sluice
