#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

struct Url {
    bool tls = false;  ///< https
    std::string host;  ///< without brackets for IPv6
    std::uint16_t port = 0;
    std::string path;  ///< base path without trailing slash ("/v1"), may be empty
};

/// Parses http(s)://host[:port][/path]. No userinfo, query or fragment.
std::optional<Url> parse_url(std::string_view text);

struct HostPort {
    std::string host;
    std::uint16_t port = 0;
};
/// Parses "host:port", "[v6]:port".
std::optional<HostPort> parse_host_port(std::string_view text);

/// True for loopback listen hosts: 127.0.0.0/8, ::1, "localhost".
bool is_loopback_host(std::string_view host);

/// The one way a value that is not sluice's own (a client's model name, an Azure deployment, a
/// Bedrock model id) enters an upstream request path: appends `value` to `out` percent-encoded
/// as a single RFC 3986 path segment (only unreserved characters are kept, so '/', '?', '#',
/// '%', spaces, controls and non-ASCII bytes are all encoded). Returns false, appending nothing,
/// when the value cannot be a segment: empty, "." or "..".
bool append_path_segment(std::string& out, std::string_view value);

/// An origin-form request target sluice may send: '/' then RFC 3986 pchar, '/' and, after one
/// '?', query characters. No spaces, controls, '#', non-ASCII or stray '%'.
bool valid_request_target(std::string_view target);
/// An RFC 9110 token (header names).
bool valid_header_name(std::string_view name);
/// A header value sluice may send: no CR, LF or NUL (nor other controls but tab).
bool valid_header_value(std::string_view value);

}  // namespace sluice
