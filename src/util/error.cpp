#include <sluice/error.hpp>

namespace sluice {

void append_json_string(std::string& out, std::string_view s) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.push_back('"');
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back(kHex[c >> 4]);
                    out.push_back(kHex[c & 0xF]);
                } else {
                    out.push_back(ch);
                }
        }
    }
    out.push_back('"');
}

std::string GatewayError::to_anthropic_json() const {
    const GatewayError& e = *this;
    std::string kind = "api_error";
    switch (e.status) {
        case 400:
        case 405:
        case 408:
        case 414:
        case 415:
        case 431: kind = "invalid_request_error"; break;
        case 401: kind = "authentication_error"; break;
        case 403: kind = "permission_error"; break;
        case 404: kind = "not_found_error"; break;
        case 413: kind = "request_too_large"; break;
        case 429: kind = "rate_limit_error"; break;
        case 503:
        case 529: kind = "overloaded_error"; break;
        default: break;
    }
    if (e.code == "insufficient_quota") {
        kind = "billing_error";
    }
    std::string out = R"({"error":{"message":)";
    append_json_string(out, e.message);
    out += R"(,"type":)";
    append_json_string(out, kind);
    out += R"(},"type":"error"})";
    return out;
}

std::string GatewayError::to_json() const {
    std::string out;
    out.reserve(96 + message.size());
    out += "{\"error\":{\"message\":";
    append_json_string(out, message);
    out += ",\"type\":";
    append_json_string(out, type);
    out += ",\"param\":";
    if (param.empty()) {
        out += "null";
    } else {
        append_json_string(out, param);
    }
    out += ",\"code\":";
    if (code.empty()) {
        out += "null";
    } else {
        append_json_string(out, code);
    }
    out += "}}";
    return out;
}

namespace {
GatewayError make(int status, const char* type, std::string code, std::string message, ErrorSource source) {
    GatewayError e;
    e.status = status;
    e.type = type;
    e.code = std::move(code);
    e.message = std::move(message);
    e.source = source;
    return e;
}
}  // namespace

GatewayError GatewayError::bad_request(std::string message, std::string code, std::string param) {
    auto e = make(400, "invalid_request_error", std::move(code), std::move(message), ErrorSource::downstream);
    e.param = std::move(param);
    return e;
}
GatewayError GatewayError::invalid_json(std::string message) {
    return make(400, "invalid_request_error", "invalid_json", std::move(message), ErrorSource::downstream);
}
GatewayError GatewayError::unauthorized(std::string message) {
    return make(401, "authentication_error", "invalid_api_key", std::move(message), ErrorSource::downstream);
}
GatewayError GatewayError::forbidden(std::string message, std::string code) {
    return make(403, "permission_error", std::move(code), std::move(message), ErrorSource::downstream);
}
GatewayError GatewayError::not_found(std::string message, std::string code) {
    return make(404, "not_found_error", std::move(code), std::move(message), ErrorSource::downstream);
}
GatewayError GatewayError::model_not_found(std::string_view model) {
    std::string msg = "The model '";
    msg += model;
    msg += "' does not exist or is not routed by this gateway.";
    auto e = make(404, "invalid_request_error", "model_not_found", std::move(msg), ErrorSource::downstream);
    e.param = "model";
    return e;
}
GatewayError GatewayError::method_not_allowed(std::string message) {
    return make(405, "invalid_request_error", "method_not_allowed", std::move(message),
                ErrorSource::downstream);
}
GatewayError GatewayError::request_timeout() {
    auto e = make(408, "invalid_request_error", "request_timeout", "The request was not received in time.",
                  ErrorSource::downstream);
    e.close_connection = true;
    return e;
}
GatewayError GatewayError::payload_too_large(std::string message) {
    auto e =
        make(413, "invalid_request_error", "request_too_large", std::move(message), ErrorSource::downstream);
    e.close_connection = true;
    return e;
}
GatewayError GatewayError::headers_too_large(std::string message) {
    auto e =
        make(431, "invalid_request_error", "headers_too_large", std::move(message), ErrorSource::downstream);
    e.close_connection = true;
    return e;
}
GatewayError GatewayError::uri_too_long() {
    auto e = make(414, "invalid_request_error", "uri_too_long", "The request target is too long.",
                  ErrorSource::downstream);
    e.close_connection = true;
    return e;
}
GatewayError GatewayError::draining() {
    auto e = make(503, "server_error", "draining", "The gateway is shutting down; retry on another instance.",
                  ErrorSource::internal);
    e.retry_after = std::string(1, '1');
    e.close_connection = true;
    return e;
}
GatewayError GatewayError::overloaded(std::string message) {
    auto e = make(503, "server_error", "overloaded", std::move(message), ErrorSource::internal);
    e.retry_after = std::string(1, '1');
    return e;
}
GatewayError GatewayError::upstream_connect_failed(std::string message) {
    return make(502, "server_error", "upstream_connect_failed", std::move(message), ErrorSource::upstream);
}
GatewayError GatewayError::upstream_tls_error(std::string message) {
    return make(502, "server_error", "upstream_tls_error", std::move(message), ErrorSource::upstream);
}
GatewayError GatewayError::upstream_timeout(std::string message) {
    return make(504, "server_error", "upstream_timeout", std::move(message), ErrorSource::upstream);
}
GatewayError GatewayError::upstream_error(std::string message, std::string code) {
    return make(502, "server_error", std::move(code), std::move(message), ErrorSource::upstream);
}
GatewayError GatewayError::internal(std::string message) {
    return make(500, "server_error", "internal_error", std::move(message), ErrorSource::internal);
}

}  // namespace sluice
