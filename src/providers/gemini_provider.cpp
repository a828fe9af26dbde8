#include "providers/gemini_provider.hpp"

#include <ctime>

#include "providers/messages_translate.hpp"
#include "providers/translate_common.hpp"
#include "sse/sse.hpp"
#include "util/base64.hpp"

namespace sluice {

using Json = nlohmann::json;

namespace {

std::int64_t int_of(const Json& j, const char* key) {
    return j.contains(key) && j[key].is_number_integer() ? j[key].get<std::int64_t>() : 0;
}

/// Gemini's schema dialect is an OpenAPI subset: keys it rejects are removed (recursively).
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
    for (const auto& [k, v] : schema.items()) {
        if (k == "$schema" || k == "additionalProperties" || k == "strict" || k == "$id") {
            continue;
        }
        out[k] = gemini_schema(v);
    }
    return out;
}

std::optional<Json> image_part(const Json& part) {
    const Json& image = part.value("image_url", Json::object());
    const std::string url = image.is_string() ? image.get<std::string>() : image.value("url", "");
    if (url.rfind("data:", 0) == 0) {
        const auto semi = url.find(';');
        const auto comma = url.find(',');
        if (semi == std::string::npos || comma == std::string::npos || url.compare(semi, 8, ";base64,") != 0) {
            return std::nullopt;
        }
        return Json{{"inlineData", {{"mimeType", url.substr(5, semi - 5)}, {"data", url.substr(comma + 1)}}}};
    }
    if (url.rfind("https://", 0) == 0 || url.rfind("gs://", 0) == 0) {
        std::string mime = "image/jpeg";
        if (url.size() > 4 && url.compare(url.size() - 4, 4, ".png") == 0) mime = "image/png";
        if (url.size() > 5 && url.compare(url.size() - 5, 5, ".webp") == 0) mime = "image/webp";
        return Json{{"fileData", {{"mimeType", mime}, {"fileUri", url}}}};
    }
    return std::nullopt;
}

std::optional<GatewayError> to_parts(const Json& content, Json& parts) {
    if (content.is_null()) {
        return std::nullopt;
    }
    if (content.is_string()) {
        if (!content.get<std::string>().empty()) {
            parts.push_back({{"text", content}});
        }
        return std::nullopt;
    }
    for (const auto& p : content) {
        const std::string type = p.value("type", "");
        if (type == "text") {
            parts.push_back({{"text", p.value("text", "")}});
        } else if (type == "image_url") {
            auto part = image_part(p);
            if (!part) {
                return GatewayError::bad_request("image_url must be an https/gs URL or a base64 data: URL.",
                                                 "invalid_parameter", "messages");
            }
            parts.push_back(std::move(*part));
        } else if (type == "input_audio") {
            const Json a = p.value("input_audio", Json::object());
            parts.push_back({{"inlineData", {{"mimeType", "audio/" + a.value("format", "wav")},
                                             {"data", a.value("data", "")}}}});
        } else {
            return GatewayError::bad_request("Content parts of type '" + type + "' cannot be sent to Gemini.",
                                             "unsupported_content", "messages");
        }
    }
    return std::nullopt;
}

std::string finish_for(const std::string& reason, bool tool_calls) {
    if (reason == "MAX_TOKENS") return "length";
    if (reason == "SAFETY" || reason == "RECITATION" || reason == "BLOCKLIST" ||
        reason == "PROHIBITED_CONTENT" || reason == "SPII" || reason == "IMAGE_SAFETY") {
        return "content_filter";
    }
    return tool_calls ? "tool_calls" : "stop";
}

Json usage_json(const Json& meta) {
    const Usage u = gemini_usage(meta);
    Json j = {{"prompt_tokens", u.prompt_tokens},
              {"completion_tokens", u.completion_tokens},
              {"total_tokens", u.total_tokens},
              {"prompt_tokens_details", {{"cached_tokens", int_of(meta, "cachedContentTokenCount")}}},
              {"completion_tokens_details", {{"reasoning_tokens", int_of(meta, "thoughtsTokenCount")}}}};
    return j;
}

Json tool_call(const Json& fc_part, int index, bool with_index) {
    const Json fc = fc_part["functionCall"];
    Json call = {{"id", fc.value("id", "call_" + std::to_string(index))},
                 {"type", "function"},
                 {"function", {{"name", fc.value("name", "")},
                               {"arguments", fc.value("args", Json::object()).dump()}}}};
    if (fc_part.contains("thoughtSignature")) {
        call["extra_content"] = {{"google", {{"thought_signature", fc_part["thoughtSignature"]}}}};
    }
    if (with_index) {
        call["index"] = index;
    }
    return call;
}

}  // namespace

Usage gemini_usage(const Json& meta) {
    Usage u;
    u.prompt_tokens = int_of(meta, "promptTokenCount");
    u.completion_tokens = int_of(meta, "candidatesTokenCount") + int_of(meta, "thoughtsTokenCount");
    u.total_tokens = u.prompt_tokens + u.completion_tokens;
    return u;
}

std::optional<GatewayError> openai_to_gemini(const Json& in, Json& out) {
    out = Json::object();
    Json system = Json::array();
    Json contents = Json::array();
    std::map<std::string, std::string> call_names;  // tool_call_id → function name
    if (!in.contains("messages") || !in["messages"].is_array()) {
        return GatewayError::bad_request("messages must be an array.", "invalid_parameter", "messages");
    }
    for (const auto& m : in["messages"]) {
        const std::string role = m.value("role", "");
        Json parts = Json::array();
        if (auto e = to_parts(m.value("content", Json()), parts)) {
            return e;
        }
        if (role == "system" || role == "developer") {
            for (auto& p : parts) {
                system.push_back(std::move(p));
            }
        } else if (role == "user") {
            append_turn(contents, "user", std::move(parts), "parts");
        } else if (role == "assistant") {
            for (const auto& call : m.value("tool_calls", Json::array())) {
                const Json fn = call.value("function", Json::object());
                Json parsed;
                if (auto e = tool_call_input(call, "Gemini", parsed)) {
                    return e;
                }
                call_names[call.value("id", "")] = fn.value("name", "");
                Json part = {{"functionCall", {{"name", fn.value("name", "")}, {"args", std::move(parsed)}}}};
                // The signature Gemini gave this call, kept by the client, goes back with it.
                if (call.contains("extra_content") && call["extra_content"].contains("google") &&
                    call["extra_content"]["google"].contains("thought_signature")) {
                    part["thoughtSignature"] = call["extra_content"]["google"]["thought_signature"];
                }
                parts.push_back(std::move(part));
            }
            append_turn(contents, "model", std::move(parts), "parts");
        } else if (role == "tool") {
            const std::string id = m.value("tool_call_id", "");
            const auto name = call_names.find(id);
            const std::string text = content_text(m.value("content", Json("")));
            Json response = Json::parse(text, nullptr, false);
            if (response.is_discarded() || !response.is_object()) {
                response = {{"content", text}};
            }
            append_turn(contents, "user",
                   Json::array({{{"functionResponse",
                                  {{"name", name == call_names.end() ? id : name->second},
                                   {"response", std::move(response)}}}}}),
                   "parts");
        } else {
            return GatewayError::bad_request("Unsupported message role '" + role + "'.", "invalid_parameter", "messages");
        }
    }
    out["contents"] = std::move(contents);
    if (!system.empty()) {
        out["systemInstruction"] = {{"parts", std::move(system)}};
    }
    if (in.contains("tools") && in["tools"].is_array()) {
        Json decls = Json::array();
        for (const auto& t : in["tools"]) {
            const Json fn = t.value("function", Json::object());
            Json d = {{"name", fn.value("name", "")}};
            if (fn.contains("description")) {
                d["description"] = fn["description"];
            }
            if (fn.contains("parameters")) {
                d["parameters"] = gemini_schema(fn["parameters"]);
            }
            decls.push_back(std::move(d));
        }
        out["tools"] = Json::array({{{"functionDeclarations", std::move(decls)}}});
    }
    if (in.contains("tool_choice")) {
        const Json& tc = in["tool_choice"];
        Json cfg;
        if (tc == "none") {
            cfg = {{"mode", "NONE"}};
        } else if (tc == "required") {
            cfg = {{"mode", "ANY"}};
        } else if (tc.is_object() && tc.contains("function")) {
            cfg = {{"mode", "ANY"}, {"allowedFunctionNames", Json::array({tc["function"].value("name", "")})}};
        } else {
            cfg = {{"mode", "AUTO"}};
        }
        out["toolConfig"] = {{"functionCallingConfig", cfg}};
    }
    Json gen = Json::object();
    const std::pair<const char*, const char*> kMap[] = {
        {"temperature", "temperature"}, {"top_p", "topP"}, {"seed", "seed"},
        {"presence_penalty", "presencePenalty"}, {"frequency_penalty", "frequencyPenalty"}, {"n", "candidateCount"}};
    for (const auto& [from, to] : kMap) {
        if (in.contains(from) && in[from].is_number()) {
            gen[to] = in[from];
        }
    }
    for (const char* key : {"max_tokens", "max_completion_tokens"}) {
        if (in.contains(key) && in[key].is_number_integer()) {
            gen["maxOutputTokens"] = in[key];
        }
    }
    if (in.contains("stop") && !in["stop"].is_null()) {
        gen["stopSequences"] = in["stop"].is_string() ? Json::array({in["stop"]}) : in["stop"];
    }
    if (in.contains("response_format") && in["response_format"].is_object()) {
        const std::string type = in["response_format"].value("type", "text");
        if (type == "json_object") {
            gen["responseMimeType"] = "application/json";
        } else if (type == "json_schema") {
            gen["responseMimeType"] = "application/json";
            gen["responseJsonSchema"] = in["response_format"].value("json_schema", Json::object()).value("schema", Json::object());
        }
    }
    if (in.contains("reasoning_effort") && in["reasoning_effort"].is_string()) {
        const std::string effort = in["reasoning_effort"];
        const int budget = effort == "none" ? 0 : effort == "low" ? 1024 : effort == "high" ? 24576 : 8192;
        gen["thinkingConfig"] = {{"thinkingBudget", budget}, {"includeThoughts", budget > 0}};
    }
    if (!gen.empty()) {
        out["generationConfig"] = std::move(gen);
    }
    return std::nullopt;
}

Json gemini_to_openai(const Json& resp, std::string_view model, Usage& usage) {
    std::string text;
    std::string reasoning;
    Json calls = Json::array();
    std::string reason;
    const Json candidates = resp.value("candidates", Json::array());
    if (!candidates.empty()) {
        const Json& c = candidates[0];
        reason = c.value("finishReason", "");
        int index = 0;
        for (const auto& p : c.value("content", Json::object()).value("parts", Json::array())) {
            if (p.contains("functionCall")) {
                calls.push_back(tool_call(p, index++, false));
            } else if (p.contains("text")) {
                (p.value("thought", false) ? reasoning : text) += p.value("text", "");
            }
        }
    } else if (resp.contains("promptFeedback") && resp["promptFeedback"].contains("blockReason")) {
        reason = "SAFETY";  // the prompt itself was blocked
    }
    Json message = {{"role", "assistant"}, {"content", text.empty() && !calls.empty() ? Json(nullptr) : Json(text)}};
    if (!calls.empty()) {
        message["tool_calls"] = std::move(calls);
    }
    if (!reasoning.empty()) {
        message["reasoning_content"] = reasoning;
    }
    const Json meta = resp.value("usageMetadata", Json::object());
    usage = gemini_usage(meta);
    const bool has_calls = message.contains("tool_calls");
    return {{"id", "chatcmpl-" + resp.value("responseId", std::string("gemini"))},
            {"object", "chat.completion"},
            {"created", static_cast<std::int64_t>(std::time(nullptr))},
            {"model", resp.value("modelVersion", std::string(model))},
            {"choices", Json::array({{{"index", 0},
                                      {"message", std::move(message)},
                                      {"logprobs", nullptr},
                                      {"finish_reason", finish_for(reason, has_calls)}}})},
            {"usage", usage_json(meta)}};
}

void GeminiProvider::add_headers(UpstreamRequest& out) const {
    if (!cfg_.api_key.empty()) {
        out.headers.emplace_back("x-goog-api-key", cfg_.api_key);  // never ?key= (it leaks into logs)
    }
    for (const auto& [k, v] : cfg_.headers) {
        out.headers.emplace_back(k, v);
    }
}

namespace {
std::string api_root(const Url& url) {
    std::string path = url.path;
    if (path.size() < 7 || path.compare(path.size() - 7, 7, "/v1beta") != 0) {
        path += "/v1beta";
    }
    return path;
}
}  // namespace

std::optional<GatewayError> GeminiProvider::build_request(const ApiRequest& req,
                                                          std::string_view upstream_model,
                                                          UpstreamRequest& out) const {
    const Json in = Json::parse(req.body, nullptr, false);
    const std::string model(upstream_model.rfind("models/", 0) == 0 ? upstream_model.substr(7) : upstream_model);
    out.method = "POST";
    out.headers.clear();
    add_headers(out);
    Json body;
    if (req.endpoint == Endpoint::chat_completions || req.endpoint == Endpoint::messages) {
        Json chat = in;
        if (req.endpoint == Endpoint::messages) {
            // The front door: Messages → chat → Gemini.
            if (auto err = messages_to_chat_request(in, upstream_model, chat)) {
                return err;
            }
        }
        if (auto err = openai_to_gemini(chat, body)) {
            return err;
        }
        out.target = api_root(url_) + "/models/" + model +
                     (req.stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
    } else if (req.endpoint == Endpoint::embeddings) {
        Json inputs = in.value("input", Json());
        if (!inputs.is_array()) {
            inputs = Json::array({inputs});
        }
        Json requests = Json::array();
        for (const auto& text : inputs) {
            if (!text.is_string()) {
                return GatewayError::bad_request("Gemini embeds text inputs only (not token arrays).",
                                                 "invalid_parameter", "input");
            }
            Json r = {{"model", "models/" + model}, {"content", {{"parts", Json::array({{{"text", text}}})}}}};
            if (in.contains("dimensions") && in["dimensions"].is_number_integer()) {
                r["outputDimensionality"] = in["dimensions"];
            }
            requests.push_back(std::move(r));
        }
        body = {{"requests", std::move(requests)}};
        out.target = api_root(url_) + "/models/" + model + ":batchEmbedContents";
    } else {
        return GatewayError::bad_request("Provider '" + name_ + "' (kind gemini) serves chat completions and "
                                         "embeddings, not " + std::string(endpoint_name(req.endpoint)) + ".",
                                         "unsupported_endpoint");
    }
    out.body = body.dump();
    return std::nullopt;
}

std::optional<UpstreamRequest> GeminiProvider::models_request() const {
    UpstreamRequest r;
    r.method = "GET";
    r.target = api_root(url_) + "/models?pageSize=1000";
    r.content_type.clear();
    add_headers(r);
    return r;
}

std::vector<std::string> GeminiProvider::parse_models(std::string_view body) const {
    std::vector<std::string> ids;
    const Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded()) {
        return ids;
    }
    for (const auto& m : j.value("models", Json::array())) {
        std::string name = m.value("name", "");
        ids.push_back(name.rfind("models/", 0) == 0 ? name.substr(7) : name);
    }
    return ids;
}

std::unique_ptr<StreamRelay> GeminiProvider::make_stream_relay(const ApiRequest& req) const {
    const bool messages = req.endpoint == Endpoint::messages;
    auto gemini = std::make_unique<GeminiStreamRelay>(req.model, req.client_wants_usage || messages,
                                                      static_cast<std::int64_t>(std::time(nullptr)));
    if (messages) {
        return std::make_unique<ChainedMessagesStream>(std::move(gemini), req.model);
    }
    return gemini;
}

Usage GeminiProvider::parse_usage(std::string_view body) const {
    const Json j = Json::parse(body, nullptr, false);
    return j.is_discarded() ? Usage{} : gemini_usage(j.value("usageMetadata", Json::object()));
}

std::optional<GatewayError> GeminiProvider::translate_response(const ApiRequest& req, std::string& body,
                                                               Usage& usage) const {
    const Json resp = Json::parse(body, nullptr, false);
    if (resp.is_discarded() || !resp.is_object()) {
        return GatewayError::upstream_error("Provider '" + name_ + "' sent an answer that is not JSON.");
    }
    if (req.endpoint == Endpoint::embeddings) {
        const Json in = Json::parse(req.body, nullptr, false);
        const bool b64 = !in.is_discarded() && in.value("encoding_format", "float") == "base64";
        Json data = Json::array();
        int index = 0;
        for (const auto& e : resp.value("embeddings", Json::array())) {
            Json item = {{"object", "embedding"}, {"index", index++}};
            if (b64) {
                item["embedding"] = base64_floats(e.value("values", Json::array()).get<std::vector<float>>());
            } else {
                item["embedding"] = e.value("values", Json::array());
            }
            data.push_back(std::move(item));
        }
        // batchEmbedContents reports no token counts.
        body = Json{{"object", "list"}, {"data", std::move(data)}, {"model", req.model},
                    {"usage", {{"prompt_tokens", 0}, {"total_tokens", 0}}}}
                   .dump();
        usage = Usage{};
        return std::nullopt;
    }
    const Json chat = gemini_to_openai(resp, req.model, usage);
    body = req.endpoint == Endpoint::messages ? chat_to_messages_response(chat, req.model, usage).dump()
                                              : chat.dump();
    return std::nullopt;
}

GatewayError GeminiProvider::translate_error(int status, std::string_view body) const {
    // {"error":{"code":400,"message":"...","status":"INVALID_ARGUMENT"}}
    GatewayError e = OpenAiProvider::translate_error(status, body);
    const Json j = Json::parse(body, nullptr, false);
    if (e.code != "upstream_auth_error" && !j.is_discarded() && j.contains("error") && j["error"].is_object()) {
        std::string code = j["error"].value("status", "");
        for (auto& c : code) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        if (!code.empty()) {
            e.code = code;
        }
        if (status == 429) {
            e.type = "rate_limit_error";
        }
    }
    return e;
}

void GeminiStreamRelay::emit(const Json& delta, const Json& finish, std::string& out) {
    Json chunk = {{"id", id_},
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

void GeminiStreamRelay::on_event(const sse::Event& ev, std::string& out) {
    if (!ev.has_data) {
        return;
    }
    const Json resp = Json::parse(ev.data, nullptr, false);
    if (resp.is_discarded() || !resp.is_object()) {
        return;
    }
    if (resp.contains("error")) {
        GatewayError e;
        e.message = resp["error"].value("message", "The provider reported an error mid-stream.");
        e.code = resp["error"].value("status", "upstream_error");
        sse::encode_data(e.to_json(), out);
        return;
    }
    if (!started_) {
        started_ = true;
        if (resp.contains("responseId")) {
            id_ = "chatcmpl-" + resp["responseId"].get<std::string>();
        }
        emit({{"role", "assistant"}, {"content", ""}}, nullptr, out);
    }
    if (resp.contains("usageMetadata")) {
        usage_ = gemini_usage(resp["usageMetadata"]);
        usage_json_ = usage_json(resp["usageMetadata"]);
    }
    const Json candidates = resp.value("candidates", Json::array());
    std::string reason;
    if (!candidates.empty()) {
        const Json& c = candidates[0];
        reason = c.value("finishReason", "");
        for (const auto& p : c.value("content", Json::object()).value("parts", Json::array())) {
            if (p.contains("functionCall")) {
                emit({{"tool_calls", Json::array({tool_call(p, next_tool_++, true)})}}, nullptr, out);
            } else if (p.contains("text") && !p["text"].get<std::string>().empty()) {
                emit({{p.value("thought", false) ? "reasoning_content" : "content", p["text"]}}, nullptr, out);
            }
        }
    } else if (resp.contains("promptFeedback") && resp["promptFeedback"].contains("blockReason")) {
        reason = "SAFETY";
    }
    if (!reason.empty() && !finish_sent_) {
        finish_sent_ = true;
        emit(Json::object(), finish_for(reason, next_tool_ > 0), out);
    }
}

void GeminiStreamRelay::on_end(std::string& out) {
    if (!started_) {
        return;  // nothing arrived: the forwarder reports the empty stream as an error
    }
    if (!finish_sent_) {
        finish_sent_ = true;
        emit(Json::object(), finish_for("", next_tool_ > 0), out);
    }
    if (client_wants_usage_ && !usage_json_.is_null()) {
        Json chunk = {{"id", id_}, {"object", "chat.completion.chunk"}, {"created", created_},
                      {"model", model_}, {"choices", Json::array()}, {"usage", usage_json_}};
        sse::encode_data(chunk.dump(), out);
    }
    sse::encode_data("[DONE]", out);
    done_ = true;
}

}  // namespace sluice
