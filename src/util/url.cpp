#include "util/url.hpp"

#include <cctype>
#include <cstring>

#include "util/bytes.hpp"
#include "util/strings.hpp"

namespace sluice {

namespace {
std::optional<std::uint16_t> parse_port(std::string_view s) {
    if (s.empty() || s.size() > 5) {
        return std::nullopt;
    }
    unsigned v = 0;
    for (const char c : s) {
        if (!std::isdigit(static_cast<unsigned char>(c))) {
            return std::nullopt;
        }
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(v);
}

bool valid_host(std::string_view h) {
    if (h.empty() || h.size() > 253) {
        return false;
    }
    for (const char c : h) {
        const auto u = static_cast<unsigned char>(c);
        if (!(std::isalnum(u) || c == '.' || c == '-' || c == '_' || c == ':')) {
            return false;
        }
    }
    return true;
}
}  // namespace

std::optional<HostPort> parse_host_port(std::string_view text) {
    HostPort hp;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return std::nullopt;
        }
        hp.host = std::string(text.substr(1, close - 1));
        port = text.substr(close + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            return std::nullopt;
        }
        hp.host = std::string(text.substr(0, colon));
        port = text.substr(colon + 1);
        if (hp.host.find(':') != std::string::npos) {
            return std::nullopt;
        }
    }
    const auto p = parse_port(port);
    if (!p || !valid_host(hp.host)) {
        return std::nullopt;
    }
    hp.port = *p;
    return hp;
}

std::optional<Url> parse_url(std::string_view text) {
    Url u;
    if (text.rfind("https://", 0) == 0) {
        u.tls = true;
        text.remove_prefix(8);
    } else if (text.rfind("http://", 0) == 0) {
        text.remove_prefix(7);
    } else {
        return std::nullopt;
    }
    const auto slash = text.find('/');
    std::string_view authority = text.substr(0, slash);
    std::string_view path = slash == std::string_view::npos ? std::string_view{} : text.substr(slash);
    if (authority.empty() || authority.find('@') != std::string_view::npos ||
        path.find_first_of("?#") != std::string_view::npos) {
        return std::nullopt;
    }
    u.port = u.tls ? 443 : 80;
    if (authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            return std::nullopt;
        }
        u.host = std::string(authority.substr(1, close - 1));
        const auto rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') {
                return std::nullopt;
            }
            const auto p = parse_port(rest.substr(1));
            if (!p) {
                return std::nullopt;
            }
            u.port = *p;
        }
    } else {
        const auto colon = authority.find(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            const auto p = parse_port(authority.substr(colon + 1));
            if (!p) {
                return std::nullopt;
            }
            u.port = *p;
        }
        if (u.host.find(':') != std::string::npos) {
            return std::nullopt;
        }
    }
    if (!valid_host(u.host)) {
        return std::nullopt;
    }
    while (!path.empty() && path.back() == '/') {
        path.remove_suffix(1);
    }
    u.path = std::string(path);
    return u;
}

namespace {
bool unreserved(unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool sub_delim(unsigned char c) {
    return c != 0 && std::strchr("!$&'()*+,;=", c) != nullptr;
}
bool hex_digit(unsigned char c) {
    return std::isxdigit(c) != 0;
}
}  // namespace

bool is_loopback_host(std::string_view host) {
    if (host == "localhost" || host == "::1" || host == "[::1]") {
        return true;
    }
    // 127.0.0.0/8, written as a dotted quad.
    if (host.rfind("127.", 0) != 0) {
        return false;
    }
    int dots = 0;
    for (const char c : host) {
        if (c == '.') {
            ++dots;
        } else if (!std::isdigit(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return dots == 3;
}

bool append_path_segment(std::string& out, std::string_view value) {
    if (value.empty() || value == "." || value == "..") {
        return false;
    }
    out += uri_encode_segment(value);
    return true;
}

bool valid_request_target(std::string_view target) {
    if (target.empty() || target.front() != '/') {
        return false;
    }
    bool in_query = false;
    for (std::size_t i = 0; i < target.size(); ++i) {
        const auto c = static_cast<unsigned char>(target[i]);
        if (c == '%') {
            if (i + 2 >= target.size() || !hex_digit(static_cast<unsigned char>(target[i + 1])) ||
                !hex_digit(static_cast<unsigned char>(target[i + 2]))) {
                return false;
            }
            i += 2;
            continue;
        }
        if (c == '?') {
            if (in_query) {
                continue;  // '?' is a query character too
            }
            in_query = true;
            continue;
        }
        if (unreserved(c) || sub_delim(c) || c == ':' || c == '@' || c == '/') {
            continue;
        }
        return false;
    }
    return true;
}

bool valid_header_name(std::string_view name) {
    if (name.empty()) {
        return false;
    }
    for (const char ch : name) {
        if (!bytes::is_tchar(static_cast<unsigned char>(ch))) {
            return false;
        }
    }
    return true;
}

bool valid_header_value(std::string_view value) {
    return bytes::find_invalid_field_byte(value, 0) == value.size();
}

}  // namespace sluice
