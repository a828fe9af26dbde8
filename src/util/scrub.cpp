#include "util/scrub.hpp"

#include <cctype>

#include "util/strings.hpp"

namespace sluice {

namespace {
bool key_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~' || c == '+' || c == '/' ||
           c == '=';
}

/// Characters of sk-style API keys (no '.', so a sentence's full stop survives).
bool api_key_char(char c) {
    const auto u = static_cast<unsigned char>(c);
    return std::isalnum(u) || c == '-' || c == '_' || c == '*';
}

bool starts_with_ci(std::string_view s, std::size_t at, std::string_view prefix) {
    return s.size() - at >= prefix.size() && iequals(s.substr(at, prefix.size()), prefix);
}
/// At a `key=` / `api_key=` / `api-key=` query parameter: appends it with its value masked and
/// returns how many input bytes it covered; 0 when `text[i]` starts no such parameter.
std::size_t scrub_query_param(std::string_view text, std::size_t i, std::string& out) {
    if (i != 0 && text[i - 1] != '?' && text[i - 1] != '&') {
        return 0;
    }
    for (const std::string_view param :
         {std::string_view("key="), std::string_view("api_key="), std::string_view("api-key=")}) {
        if (starts_with_ci(text, i, param)) {
            out.append(text.substr(i, param.size()));
            std::size_t j = i + param.size();
            while (j < text.size() && key_char(text[j]) && text[j] != '&') {
                ++j;
            }
            out += "***";
            return j - i;
        }
    }
    return 0;
}

}  // namespace

std::string scrub_secrets(std::string_view text, std::string_view known_secret, std::size_t max_len) {
    const std::string one(known_secret);
    return scrub_secrets(text, std::span<const std::string>(&one, 1), max_len);
}

std::string scrub_secrets(std::string_view text, std::span<const std::string> known_secrets,
                          std::size_t max_len) {
    std::string out;
    out.reserve(std::min(text.size(), max_len) + 16);
    std::size_t i = 0;
    while (i < text.size()) {
        if (out.size() >= max_len) {
            // Never end inside a UTF-8 sequence: the text becomes JSON.
            while (!out.empty() && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80) {
                out.pop_back();
            }
            if (!out.empty() && static_cast<unsigned char>(out.back()) >= 0xC0) {
                out.pop_back();
            }
            out += "...";
            break;
        }
        bool masked = false;
        for (const std::string& secret : known_secrets) {
            if (secret.size() >= 4 && text.compare(i, secret.size(), secret) == 0) {
                out += "***";
                i += secret.size();
                masked = true;
                break;
            }
        }
        if (masked) {
            continue;
        }
        // sk-..., sk_..., also inside "Incorrect API key provided: sk-abc***xyz".
        const bool boundary = i == 0 || !key_char(text[i - 1]);
        if (boundary && (starts_with_ci(text, i, "sk-") || starts_with_ci(text, i, "sk_") ||
                         starts_with_ci(text, i, "AIza"))) {
            std::size_t j = i;
            while (j < text.size() && api_key_char(text[j])) {
                ++j;
            }
            if (j - i >= 8) {
                out += "***";
                i = j;
                continue;
            }
        }
        if (starts_with_ci(text, i, "bearer ")) {
            out.append(text.substr(i, 7));
            std::size_t j = i + 7;
            while (j < text.size() && key_char(text[j])) {
                ++j;
            }
            out += "***";
            i = j;
            continue;
        }
        if (const std::size_t skip = scrub_query_param(text, i, out); skip > 0) {
            i += skip;
        } else {
            out.push_back(text[i]);
            ++i;
        }
    }
    return out;
}

}  // namespace sluice
