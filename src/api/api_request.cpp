#include "api/api_request.hpp"

#include <set>

#include "json/json_scan.hpp"

namespace sluice {

std::string_view endpoint_name(Endpoint e) noexcept {
    switch (e) {
        case Endpoint::chat_completions: return "chat.completions";
        case Endpoint::completions: return "completions";
        case Endpoint::embeddings: return "embeddings";
        case Endpoint::models: return "models";
        case Endpoint::messages: return "messages";
        case Endpoint::count_tokens: return "messages.count_tokens";
    }
    return "unknown";
}

std::optional<GatewayError> parse_api_request(Endpoint endpoint, std::string body, ApiRequest& out) {
    out = ApiRequest{};
    out.endpoint = endpoint;
    out.body = std::move(body);
    std::vector<json::Member> members;
    json::ScanError err;
    if (!json::scan(out.body, &members, err)) {
        return GatewayError::invalid_json("The request body is not valid JSON: " + err.message +
                                          " (at byte " + std::to_string(err.offset) + ").");
    }
    std::size_t first = 0;
    while (first < out.body.size() && (out.body[first] == ' ' || out.body[first] == '\n' ||
                                       out.body[first] == '\r' || out.body[first] == '\t')) {
        ++first;
    }
    if (first >= out.body.size() || out.body[first] != '{') {
        return GatewayError::bad_request("The request body must be a JSON object.", "invalid_json");
    }
    std::set<std::string> seen;
    const json::Member* model = nullptr;
    const json::Member* stream = nullptr;
    const json::Member* stream_options = nullptr;
    for (const auto& m : members) {
        std::string key = m.raw_key.find('\\') == std::string_view::npos ? std::string(m.raw_key)
                                                                         : json::unescape(m.raw_key);
        if (!seen.insert(key).second) {
            return GatewayError::bad_request("The field '" + key + "' appears more than once.",
                                             "duplicate_key", key);
        }
        if (key == "model") {
            model = &m;
        } else if (key == "stream") {
            stream = &m;
        } else if (key == "stream_options") {
            stream_options = &m;
        }
        out.member_spans.emplace_back(m.begin, m.end);
    }
    if (model == nullptr) {
        return GatewayError::bad_request("You must provide a model parameter.", "missing_model", "model");
    }
    auto name = json::string_value(model->value);
    if (!name || name->empty()) {
        return GatewayError::bad_request("The model parameter must be a non-empty string.",
                                         "invalid_parameter", "model");
    }
    // The model name travels into upstream paths (Gemini, Azure, Bedrock), response headers and
    // logs: no control characters, bounded length.
    if (name->size() > kMaxModelNameBytes) {
        return GatewayError::bad_request(
            "The model parameter is longer than " + std::to_string(kMaxModelNameBytes) + " bytes.",
            "invalid_parameter", "model");
    }
    for (const char c : *name) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            return GatewayError::bad_request("The model parameter may not contain control characters.",
                                             "invalid_parameter", "model");
        }
    }
    out.model = std::move(*name);
    out.model_value = {static_cast<std::size_t>(model->value.data() - out.body.data()),
                       static_cast<std::size_t>(model->value.data() - out.body.data()) + model->value.size()};
    if (stream != nullptr) {
        if (stream->kind == json::Kind::null) {
            out.stream = false;
        } else if (stream->kind != json::Kind::boolean) {
            return GatewayError::bad_request("The stream parameter must be a boolean.", "invalid_parameter",
                                             "stream");
        } else {
            out.stream = stream->value == "true";
        }
    }
    if (endpoint == Endpoint::embeddings && out.stream) {
        return GatewayError::bad_request("Embeddings cannot be streamed.", "invalid_parameter", "stream");
    }
    if (stream_options != nullptr) {
        out.stream_options_member = std::make_pair(stream_options->begin, stream_options->end);
        if (stream_options->kind == json::Kind::object) {
            std::vector<json::Member> opts;
            json::ScanError e2;
            json::scan(stream_options->value, &opts, e2);
            if (const auto* iu = json::find(opts, "include_usage")) {
                if (iu->kind != json::Kind::boolean && iu->kind != json::Kind::null) {
                    return GatewayError::bad_request("stream_options.include_usage must be a boolean.",
                                                     "invalid_parameter", "stream_options.include_usage");
                }
                out.client_wants_usage = iu->value == "true";
            }
        } else if (stream_options->kind != json::Kind::null) {
            return GatewayError::bad_request("stream_options must be an object.", "invalid_parameter",
                                             "stream_options");
        }
    }
    return std::nullopt;
}

bool parse_usage_object(std::string_view object, Usage& u) {
    u = Usage{};
    std::vector<json::Member> members;
    json::ScanError err;
    if (!json::scan(object, &members, err)) {
        return false;
    }
    for (const auto& m : members) {
        std::int64_t* slot = m.key_is("prompt_tokens")       ? &u.prompt_tokens
                             : m.key_is("completion_tokens") ? &u.completion_tokens
                             : m.key_is("total_tokens")      ? &u.total_tokens
                                                             : nullptr;
        if (slot == nullptr || m.kind == json::Kind::null) {
            continue;  // details objects and fields sluice does not count
        }
        const auto v = m.kind == json::Kind::number ? json::int_value(m.value) : std::nullopt;
        if (!v || *v < 0) {
            return false;
        }
        *slot = *v;
    }
    return true;
}

}  // namespace sluice
