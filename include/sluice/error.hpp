#pragma once

#include <string>
#include <string_view>

namespace sluice {

/// Which side of the proxy an error came from (downstream = client, upstream = provider).
enum class ErrorSource {
    downstream,
    upstream,
    internal
};

/// An error sluice answers with, always serialized in OpenAI's shape:
/// {"error":{"message":...,"type":...,"param":...,"code":...}}.
/// Named constructors keep every stage in one dialect (status, type and code go together).
struct GatewayError {
    int status = 500;
    std::string type = "server_error";
    std::string code;  ///< empty → JSON null
    std::string message;
    std::string param;  ///< empty → JSON null
    ErrorSource source = ErrorSource::internal;
    std::string retry_after;        ///< Retry-After header value to send, empty = none
    bool close_connection = false;  ///< answer with Connection: close and close afterwards

    /// The body: {"error":{"message","type","param","code"}}.
    std::string to_json() const;
    /// The same error in Anthropic's shape: {"type":"error","error":{"type":...,"message":...}}.
    std::string to_anthropic_json() const;

    static GatewayError bad_request(std::string message, std::string code = "invalid_request",
                                    std::string param = {});
    static GatewayError invalid_json(std::string message);
    static GatewayError unauthorized(std::string message);
    static GatewayError forbidden(std::string message, std::string code = "model_not_allowed");
    static GatewayError not_found(std::string message, std::string code = "not_found");
    static GatewayError model_not_found(std::string_view model);
    static GatewayError method_not_allowed(std::string message);
    static GatewayError request_timeout();
    static GatewayError payload_too_large(std::string message);
    static GatewayError headers_too_large(std::string message);
    static GatewayError uri_too_long();
    static GatewayError draining();
    static GatewayError overloaded(std::string message);
    static GatewayError upstream_connect_failed(std::string message);
    static GatewayError upstream_tls_error(std::string message);
    static GatewayError upstream_timeout(std::string message);
    static GatewayError upstream_error(std::string message, std::string code = "upstream_error");
    static GatewayError internal(std::string message);
};

/// Appends `s` to `out` as a JSON string literal (with quotes), escaping as RFC 8259 requires.
void append_json_string(std::string& out, std::string_view s);

}  // namespace sluice
