#include "api/api_request.hpp"

#include <algorithm>

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

namespace {
/// The first key (in order of its second appearance) that appears more than once. Bodies have a
/// handful of members, compared pairwise; past 32 a sorted copy keeps it O(n log n).
std::optional<std::string_view> first_repeated(const std::vector<std::string_view>& keys) {
    if (keys.size() <= 32) {
        for (std::size_t i = 1; i < keys.size(); ++i) {
            for (std::size_t j = 0; j < i; ++j) {
                if (keys[i] == keys[j]) {
                    return keys[i];
                }
            }
        }
        return std::nullopt;
    }
    std::vector<std::size_t> order(keys.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
        order[i] = i;
    }
    std::stable_sort(order.begin(), order.end(),
                     [&keys](std::size_t a, std::size_t b) { return keys[a] < keys[b]; });
    std::optional<std::size_t> second;  // the smallest index that repeats an earlier key
    for (std::size_t i = 1; i < order.size(); ++i) {
        if (keys[order[i]] == keys[order[i - 1]] && (!second || order[i] < *second)) {
            second = order[i];
        }
    }
    return second ? std::optional<std::string_view>(keys[*second]) : std::nullopt;
}
}  // namespace

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
    const json::Member* model = nullptr;
    const json::Member* stream = nullptr;
    const json::Member* stream_options = nullptr;
    std::vector<std::string> unescaped;  // keys written with escapes, decoded (rare)
    unescaped.reserve(members.size());   // (no reallocation: keys below point into it)
    std::vector<std::string_view> keys;
    keys.reserve(members.size());
    out.member_spans.reserve(members.size());
    for (const auto& m : members) {
        std::string_view key = m.raw_key;
        if (key.find('\\') != std::string_view::npos) {
            key = unescaped.emplace_back(json::unescape(m.raw_key));
        }
        keys.push_back(key);
        if (key == "model") {
            model = &m;
        } else if (key == "stream") {
            stream = &m;
        } else if (key == "stream_options") {
            stream_options = &m;
        }
        out.member_spans.emplace_back(m.begin, m.end);
    }
    if (const auto dup = first_repeated(keys)) {
        const std::string key(*dup);
        return GatewayError::bad_request("The field '" + key + "' appears more than once.", "duplicate_key",
                                         key);
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
