#include "providers/openai_provider.hpp"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "api/api_request.hpp"
#include "json/json_dom.hpp"
#include "json/json_scan.hpp"
#include "routing/select.hpp"
#include "sse/sse.hpp"
#include "stream/client_encoders.hpp"
#include "util/scrub.hpp"
#include "util/strings.hpp"
#include "util/url.hpp"

namespace sluice {

LocalResponse Provider::respond_locally(const UpstreamRequest& /*req*/) const {
    LocalResponse r;
    r.status = 500;
    r.body = GatewayError::internal("provider cannot answer locally").to_json();
    return r;
}

std::string host_header(const UpstreamSettings& s) {
    std::string h = s.host.find(':') != std::string::npos ? "[" + s.host + "]" : s.host;
    if ((s.tls && s.port != 443) || (!s.tls && s.port != 80)) {
        h += ':';
        h += std::to_string(s.port);
    }
    return h;
}

std::optional<GatewayError> Provider::translate_response(const ApiRequest& /*req*/, std::string& body,
                                                         Usage& usage) const {
    usage = parse_usage(body);
    return std::nullopt;
}

std::string Provider::scrub(std::string_view text, std::size_t max_len) const {
    return scrub_secrets(text, settings().secrets, max_len);
}

GatewayError Provider::scrubbed(GatewayError e) const {
    e.message = scrub(e.message);
    e.type = scrub(e.type, 64);
    e.code = scrub(e.code, 64);
    e.param = scrub(e.param, 256);
    return e;
}

OpenAiProvider::OpenAiProvider(const ProviderConfig& cfg) : cfg_(cfg), name_(cfg.name) {
    if (auto u = parse_url(cfg.base_url)) {
        url_ = *u;
    }
    // A key configured as ${VAR} whose variable is unset switches the provider off.
    enabled_ = !(cfg.api_key_set && cfg.api_key.empty());
    settings_.tls = url_.tls;
    settings_.host = url_.host;
    settings_.port = url_.port;
    settings_.connect_timeout = cfg.connect_timeout;
    settings_.first_byte_timeout = cfg.first_byte_timeout;
    settings_.idle_timeout = cfg.idle_timeout;
    settings_.request_timeout = cfg.request_timeout;
    settings_.first_token_timeout = cfg.first_token_timeout;
    settings_.pool_idle_timeout = cfg.pool_idle_timeout;
    settings_.max_connections = cfg.max_connections;
    settings_.max_response_bytes = cfg.max_response_bytes;
    if (!cfg.api_key.empty()) {
        settings_.secrets.push_back(cfg.api_key);
    }
}

namespace {

std::string_view path_for(Endpoint e) {
    switch (e) {
        case Endpoint::chat_completions: return "/chat/completions";
        case Endpoint::completions: return "/completions";
        case Endpoint::embeddings: return "/embeddings";
        case Endpoint::models: return "/models";
        case Endpoint::messages: return "/chat/completions";  // (the front door sends chat)
        case Endpoint::count_tokens: return "/";
    }
    return "/";
}

struct Splice {
    std::size_t begin;
    std::size_t end;
    std::string text;
};

}  // namespace

std::string splice_model(const ApiRequest& req, std::string_view upstream_model) {
    if (upstream_model == req.model) {
        return req.body;
    }
    std::string out = req.body.substr(0, req.model_value.first);
    append_json_string(out, upstream_model);
    out.append(req.body, req.model_value.second, std::string::npos);
    return out;
}

std::string rewrite_openai_body(const ApiRequest& req, std::string_view upstream_model) {
    std::vector<Splice> splices;
    if (upstream_model != req.model) {
        std::string quoted;
        append_json_string(quoted, upstream_model);
        splices.push_back({req.model_value.first, req.model_value.second, std::move(quoted)});
    }
    if (req.stream && !req.client_wants_usage) {
        if (req.stream_options_member) {
            // Keep the client's other options; force include_usage on.
            const auto [b, e] = *req.stream_options_member;
            const std::string_view member(req.body.data() + b, e - b);
            std::vector<json::Member> top;
            json::ScanError err;
            std::string replacement = "\"stream_options\":{";
            const auto colon = member.find(':');
            const auto value = member.substr(colon + 1);
            std::vector<json::Member> opts;
            if (json::scan(value, &opts, err)) {
                for (const auto& o : opts) {
                    if (o.key_is("include_usage")) {
                        continue;
                    }
                    replacement.append(value.substr(o.begin, o.end - o.begin));
                    replacement.push_back(',');
                }
            }
            replacement += "\"include_usage\":true}";
            splices.push_back({b, e, std::move(replacement)});
        } else {
            const auto close = req.body.find_last_of('}');
            const bool empty_object = req.member_spans.empty();
            splices.push_back(
                {close, close,
                 std::string(empty_object ? "" : ",") + "\"stream_options\":{\"include_usage\":true}"});
        }
    }
    if (splices.empty()) {
        return req.body;
    }
    std::sort(splices.begin(), splices.end(),
              [](const Splice& a, const Splice& b) { return a.begin < b.begin; });
    std::string out;
    out.reserve(req.body.size() + 64);
    std::size_t pos = 0;
    for (const auto& s : splices) {
        out.append(req.body, pos, s.begin - pos);
        out += s.text;
        pos = s.end;
    }
    out.append(req.body, pos, std::string::npos);
    return out;
}

void OpenAiProvider::add_headers(UpstreamRequest& out) const {
    if (!cfg_.api_key.empty()) {
        out.headers.emplace_back("Authorization", "Bearer " + cfg_.api_key);
    }
    for (const auto& [k, v] : cfg_.headers) {
        out.headers.emplace_back(k, v);
    }
}

std::optional<GatewayError> OpenAiProvider::upstream_body(const ApiRequest& req,
                                                          std::string_view upstream_model,
                                                          std::string& body) const {
    if (req.endpoint == Endpoint::count_tokens) {
        return GatewayError::bad_request("Provider '" + name_ +
                                             "' cannot count tokens; "
                                             "/v1/messages/count_tokens needs an anthropic provider.",
                                         "unsupported_endpoint");
    }
    body = rewrite_openai_body(req, upstream_model);
    return std::nullopt;
}

std::optional<GatewayError> OpenAiProvider::build_request(const ApiRequest& req,
                                                          std::string_view upstream_model,
                                                          UpstreamRequest& out) const {
    out.method = "POST";
    out.target = url_.path;
    out.target += path_for(req.endpoint);
    out.headers.clear();
    add_headers(out);
    if (req.stream) {
        out.headers.emplace_back("Accept", "text/event-stream");
    }
    return upstream_body(req, upstream_model, out.body);
}

std::optional<GatewayError> OpenAiProvider::translate_response(const ApiRequest& /*req*/, std::string& body,
                                                               Usage& usage) const {
    // Passed through as it came; the usage is read strictly (it is what sluice bills).
    std::vector<json::Member> top;
    json::ScanError err;
    usage = Usage{};
    if (json::scan(body, &top, err)) {
        const auto* u = json::find(top, "usage");
        if (u != nullptr && u->kind == json::Kind::object && !parse_usage_object(u->value, usage)) {
            return GatewayError::upstream_error(
                "Provider '" + name_ + "' sent token counts that are not non-negative integers.",
                "upstream_invalid_response");
        }
    }
    return std::nullopt;
}

void AzureProvider::add_headers(UpstreamRequest& out) const {
    if (!cfg_.api_key.empty()) {
        out.headers.emplace_back("api-key", cfg_.api_key);
    }
    for (const auto& [k, v] : cfg_.headers) {
        out.headers.emplace_back(k, v);
    }
}

std::optional<GatewayError> AzureProvider::build_request(const ApiRequest& req,
                                                         std::string_view upstream_model,
                                                         UpstreamRequest& out) const {
    out.method = "POST";
    out.headers.clear();
    add_headers(out);
    if (req.stream) {
        out.headers.emplace_back("Accept", "text/event-stream");
    }
    if (cfg_.api_version == "v1") {
        out.target = url_.path + "/openai/v1" + std::string(path_for(req.endpoint));
    } else {
        out.target = url_.path + "/openai/deployments/";
        if (!append_path_segment(out.target, upstream_model)) {
            return GatewayError::bad_request(
                "The model '" + std::string(upstream_model) + "' cannot name an Azure deployment.",
                "invalid_parameter", "model");
        }
        out.target += path_for(req.endpoint);
        out.target += "?api-version=";
        out.target += uri_encode_segment(cfg_.api_version);
    }
    return upstream_body(req, upstream_model, out.body);
}

std::optional<UpstreamRequest> AzureProvider::models_request() const {
    if (cfg_.api_version != "v1") {
        return std::nullopt;
    }
    UpstreamRequest r;
    r.method = "GET";
    r.target = url_.path + "/openai/v1/models";
    r.content_type.clear();
    add_headers(r);
    return r;
}

std::optional<UpstreamRequest> OpenAiProvider::models_request() const {
    UpstreamRequest r;
    r.method = "GET";
    r.target = url_.path + "/models";
    r.content_type.clear();
    add_headers(r);
    return r;
}

std::vector<std::string> OpenAiProvider::parse_models(std::string_view body) const {
    // {"object":"list","data":[{"id":"gpt-4o",...},...]}
    std::vector<std::string> ids;
    std::vector<json::Member> top;
    json::ScanError err;
    if (!json::scan(body, &top, err)) {
        return ids;
    }
    const auto* data = json::find(top, "data");
    if (data == nullptr || data->kind != json::Kind::array) {
        return ids;
    }
    // Walk the array's objects: wrap each element scan through a synthetic object.
    std::string_view arr = data->value;
    std::size_t i = 1;
    while (i < arr.size()) {
        const auto open = arr.find('{', i);
        if (open == std::string_view::npos) {
            break;
        }
        // Find the matching close brace, honouring strings.
        int depth = 0;
        bool in_str = false;
        std::size_t j = open;
        for (; j < arr.size(); ++j) {
            const char c = arr[j];
            if (in_str) {
                if (c == '\\') {
                    ++j;
                } else if (c == '"') {
                    in_str = false;
                }
                continue;
            }
            if (c == '"') {
                in_str = true;
            } else if (c == '{') {
                ++depth;
            } else if (c == '}' && --depth == 0) {
                break;
            }
        }
        std::vector<json::Member> obj;
        if (json::scan(arr.substr(open, j - open + 1), &obj, err)) {
            if (const auto* id = json::find(obj, "id")) {
                if (auto s = json::string_value(id->value)) {
                    ids.push_back(std::move(*s));
                }
            }
        }
        i = j + 1;
    }
    return ids;
}

std::unique_ptr<StreamRelay> OpenAiProvider::make_stream_relay(const ApiRequest& req, StreamOutput out,
                                                               std::int64_t /*now*/) const {
    if (out.passthrough == StreamOutput::Passthrough::openai) {
        return std::make_unique<OpenAiStreamRelay>(req.client_wants_usage);  // chunks as they came
    }
    return std::make_unique<OpenAiChunkDecoder>(std::move(out.sink));
}

Usage OpenAiProvider::parse_usage(std::string_view body) const {
    std::vector<json::Member> top;
    json::ScanError err;
    if (!json::scan(body, &top, err)) {
        return {};
    }
    const auto* usage = json::find(top, "usage");
    if (usage == nullptr || usage->kind != json::Kind::object) {
        return {};
    }
    Usage u;
    return parse_usage_object(usage->value, u) ? u : Usage{};
}

GatewayError openai_error_from_body(int status, std::string_view body) {
    GatewayError e;
    e.source = ErrorSource::upstream;
    e.status = status;
    e.type.clear();
    std::vector<json::Member> top;
    json::ScanError err;
    if (json::scan(body, &top, err)) {
        const auto* error = json::find(top, "error");
        if (error != nullptr && error->kind == json::Kind::object) {
            std::vector<json::Member> fields;
            json::scan(error->value, &fields, err);
            for (const auto& f : fields) {
                auto s = json::string_value(f.value);
                if (!s) {
                    continue;
                }
                if (f.key_is("message")) {
                    e.message = std::move(*s);
                } else if (f.key_is("type")) {
                    e.type = std::move(*s);
                } else if (f.key_is("code")) {
                    e.code = std::move(*s);
                } else if (f.key_is("param")) {
                    e.param = std::move(*s);
                }
            }
        } else if (error != nullptr && error->kind == json::Kind::string) {
            e.message = json::string_value(error->value).value_or("");
        } else if (const auto* detail = json::find(top, "detail")) {
            e.message = json::string_value(detail->value).value_or("");  // FastAPI-style (vLLM)
        } else if (const auto* msg = json::find(top, "message")) {
            e.message = json::string_value(msg->value).value_or("");
        }
    }
    if (e.message.empty()) {
        e.message = "The provider answered HTTP " + std::to_string(status) + ".";
    }
    return e;
}

std::optional<std::chrono::milliseconds> Provider::retry_after_headers(const HeaderView& headers,
                                                                       std::int64_t now_unix) {
    return routing::parse_retry_after(headers.find("retry-after-ms"), headers.find("x-ms-retry-after-ms"),
                                      headers.find("retry-after"), now_unix);
}

ProviderError OpenAiProvider::translate_error(int status, const HeaderView& headers, std::string_view body,
                                              std::int64_t now_unix) const {
    return ProviderError{body_error(status, body), retry_after_headers(headers, now_unix)};
}

GatewayError OpenAiProvider::body_error(int status, std::string_view body) const {
    GatewayError e = scrubbed(openai_error_from_body(status, body));
    if (status == 401 || status == 403) {
        // The client's sluice key was fine; the provider refused sluice's credentials.
        e.status = 502;
        e.type = "server_error";
        e.code = "upstream_auth_error";
        e.message = "The provider '" + name_ + "' rejected the gateway's credentials (HTTP " +
                    std::to_string(status) + "): " + e.message;
    } else if (e.type.empty() || e.type == "server_error") {
        e.type = status == 429   ? "rate_limit_error"
                 : status >= 500 ? "server_error"
                 : status == 404 ? "not_found_error"
                                 : "invalid_request_error";
    }
    return e;
}

std::span<const std::string_view> OpenAiStreamRelay::plain_data_markers() const {
    // Only events that carry usage or an error need their JSON read (on_event). A key can be
    // spelled with escapes ("\u0075sage"), so an escaped lowercase letter sends an event there too.
    static constexpr std::string_view kMarkers[] = {"\"usage\"", "\"error\"", "\\u006", "\\u007"};
    return kMarkers;
}

bool OpenAiStreamRelay::on_plain_data(std::string_view data, std::string_view raw, std::string& out) {
    if (data == "[DONE]") {
        done_ = true;
    }
    out += raw;
    return true;
}

bool OpenAiStreamRelay::on_event(const sse::Event& ev, std::string& out) {
    if (ev.comment_only) {
        sse::encode(ev, out);
        return true;
    }
    if (ev.data == "[DONE]") {
        done_ = true;
        sse::encode(ev, out);
        return true;
    }
    top_.clear();
    json::ScanError err;
    if (!ev.has_data || !json::scan(ev.data, &top_, err)) {
        sse::encode(ev, out);
        return true;
    }
    if (const json::Member* error = json::find(top_, "error");
        error != nullptr && error->kind == json::Kind::object) {
        // The provider reported an error in the stream: it ends here, re-worded by sluice (and
        // scrubbed of secrets) like every provider error.
        GatewayError e = openai_error_from_body(502, ev.data);
        if (e.type == "rate_limit_error" || e.code.find("rate_limit") != std::string::npos) {
            e.status = 429;
            e.type = "rate_limit_error";
        } else if (e.type.empty()) {
            e.type = "server_error";
        }
        return fail(std::move(e));
    }
    const json::Member* usage = json::find(top_, "usage");
    if (usage != nullptr && usage->kind == json::Kind::object) {
        if (!parse_usage_object(usage->value, usage_)) {
            return fail_invalid("token counts that are not non-negative integers");
        }
    }
    if (client_wants_usage_ || usage == nullptr) {
        sse::encode(ev, out);
        return true;
    }
    // sluice asked for usage on the client's behalf: hide it again.
    const json::Member* choices = json::find(top_, "choices");
    if (usage->kind == json::Kind::object && choices != nullptr && choices->kind == json::Kind::array &&
        choices->value.find_first_not_of(" \t\r\n", 1) == choices->value.size() - 1) {
        return true;  // the usage-only chunk
    }
    // Splice `"usage":...` out together with one adjacent comma.
    const std::string& d = ev.data;
    std::size_t b = usage->begin;
    std::size_t e = usage->end;
    const auto is_ws = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
    std::size_t after = e;
    while (after < d.size() && is_ws(d[after])) {
        ++after;
    }
    if (after < d.size() && d[after] == ',') {
        e = after + 1;
    } else {
        std::size_t before = b;
        while (before > 0 && is_ws(d[before - 1])) {
            --before;
        }
        if (before > 0 && d[before - 1] == ',') {
            b = before - 1;
        }
    }
    sse::encode_fields(ev, out);
    // The JSON text of an OpenAI chunk is one line; a multi-line one is re-split on its newlines.
    const std::string_view head(d.data(), b);
    const std::string_view tail(d.data() + e, d.size() - e);
    if (d.find('\n') == std::string::npos) {
        out += "data: ";
        out += head;
        out += tail;
        out += "\n\n";
    } else {
        sse::Event copy;  // fields already written: only the data lines are encoded
        copy.has_data = true;
        copy.data.reserve(head.size() + tail.size());
        copy.data.append(head);
        copy.data.append(tail);
        sse::encode(copy, out);
    }
    return true;
}

}  // namespace sluice
