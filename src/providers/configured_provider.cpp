#include "providers/configured_provider.hpp"

#include "json/json_scan.hpp"

namespace sluice {

ConfiguredProvider::ConfiguredProvider(const ProviderConfig& cfg) : cfg_(cfg), name_(cfg.name) {
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

ProviderError ConfiguredProvider::translate_error(int status, const HeaderView& headers,
                                                  std::string_view body, std::int64_t now_unix) const {
    return ProviderError{body_error(status, body), retry_after_headers(headers, now_unix)};
}

void ConfiguredProvider::add_config_headers(UpstreamRequest& out) const {
    for (const auto& [k, v] : cfg_.headers) {
        out.headers.emplace_back(k, v);
    }
}

UpstreamRequest ConfiguredProvider::get_request(std::string target) {
    UpstreamRequest r;
    r.method = "GET";
    r.target = std::move(target);
    r.content_type.clear();
    return r;
}

GatewayError ConfiguredProvider::body_error(int status, std::string_view body) const {
    GatewayError e = scrubbed(error_from_json_body(status, body));
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

GatewayError error_from_json_body(int status, std::string_view body) {
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

std::vector<std::string> model_ids_from_list(std::string_view body) {
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

}  // namespace sluice
