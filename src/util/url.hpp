#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

struct Url {
    bool tls = false;     ///< https
    std::string host;     ///< without brackets for IPv6
    std::uint16_t port = 0;
    std::string path;     ///< base path without trailing slash ("/v1"), may be empty
};

/// Parses http(s)://host[:port][/path]. No userinfo, query or fragment.
std::optional<Url> parse_url(std::string_view text);

struct HostPort {
    std::string host;
    std::uint16_t port = 0;
};
/// Parses "host:port", "[v6]:port".
std::optional<HostPort> parse_host_port(std::string_view text);

}  // namespace sluice
