#include "util/strings.hpp"

#include <array>
#include <cctype>
#include <random>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

namespace sluice {

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        auto x = static_cast<unsigned char>(a[i]);
        auto y = static_cast<unsigned char>(b[i]);
        if (x != y) {
            // Equal but for case: both letters, differing only in the 0x20 bit.
            const auto lx = static_cast<unsigned char>(x | 0x20);
            if (lx != (y | 0x20) || lx < 'a' || lx > 'z') {
                return false;
            }
        }
    }
    return true;
}

std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

bool is_glob(std::string_view pattern) noexcept {
    return pattern.find_first_of("*?[") != std::string_view::npos;
}

namespace {
// Matches one character class starting at pattern[p] == '['. Sets `end` past the ']'.
bool match_class(std::string_view pattern, std::size_t p, char c, std::size_t& end, bool& ok) {
    std::size_t i = p + 1;
    bool negate = false;
    if (i < pattern.size() && (pattern[i] == '!' || pattern[i] == '^')) {
        negate = true;
        ++i;
    }
    bool matched = false;
    bool first = true;
    while (i < pattern.size() && (first || pattern[i] != ']')) {
        first = false;
        char lo = pattern[i];
        if (lo == '\\' && i + 1 < pattern.size()) {
            lo = pattern[++i];
        }
        char hi = lo;
        if (i + 2 < pattern.size() && pattern[i + 1] == '-' && pattern[i + 2] != ']') {
            hi = pattern[i + 2];
            i += 2;
        }
        if (c >= lo && c <= hi) {
            matched = true;
        }
        ++i;
    }
    if (i >= pattern.size()) {
        ok = false;  // unterminated class: treat '[' literally
        return false;
    }
    ok = true;
    end = i + 1;
    return matched != negate;
}
}  // namespace

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
    // Iterative matcher with single backtrack point: linear-ish, no recursion.
    std::size_t p = 0;
    std::size_t t = 0;
    std::size_t star_p = std::string_view::npos;
    std::size_t star_t = 0;
    while (t < text.size()) {
        if (p < pattern.size()) {
            const char pc = pattern[p];
            if (pc == '*') {
                star_p = p++;
                star_t = t;
                continue;
            }
            if (pc == '?') {
                ++p;
                ++t;
                continue;
            }
            if (pc == '[') {
                std::size_t end = 0;
                bool ok = false;
                const bool m = match_class(pattern, p, text[t], end, ok);
                if (ok) {
                    if (m) {
                        p = end;
                        ++t;
                        continue;
                    }
                } else if (text[t] == '[') {
                    ++p;
                    ++t;
                    continue;
                }
            } else if (pc == '\\' && p + 1 < pattern.size()) {
                if (pattern[p + 1] == text[t]) {
                    p += 2;
                    ++t;
                    continue;
                }
            } else if (pc == text[t]) {
                ++p;
                ++t;
                continue;
            }
        }
        if (star_p != std::string_view::npos) {
            p = star_p + 1;
            t = ++star_t;
            continue;
        }
        return false;
    }
    while (p < pattern.size() && pattern[p] == '*') {
        ++p;
    }
    return p == pattern.size();
}

std::string uri_encode_segment(std::string_view s) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (std::isalnum(c) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
        }
    }
    return out;
}

std::array<unsigned char, 32> sha256(std::string_view data) {
    // EVP_Digest with EVP_sha256() fetches the implementation (a locked table lookup) and
    // allocates a context on every call: both are done once here.
    static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    struct Context {
        EVP_MD_CTX* ctx = EVP_MD_CTX_new();
        Context() = default;
        Context(const Context&) = delete;
        Context& operator=(const Context&) = delete;
        ~Context() { EVP_MD_CTX_free(ctx); }
    };
    thread_local Context c;
    std::array<unsigned char, 32> digest{};
    unsigned int len = 0;
    if (md == nullptr || c.ctx == nullptr || EVP_DigestInit_ex2(c.ctx, md, nullptr) != 1 ||
        EVP_DigestUpdate(c.ctx, data.data(), data.size()) != 1 ||
        EVP_DigestFinal_ex(c.ctx, digest.data(), &len) != 1) {
        EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_sha256(), nullptr);  // the slow way
    }
    return digest;
}

std::string sha256_hex(std::string_view data) {
    const std::array<unsigned char, 32> digest = sha256(data);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(64);
    for (unsigned i = 0; i < digest.size(); ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 0xF]);
    }
    return out;
}

bool constant_time_equals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) {
        return false;
    }
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_request_id() {
    thread_local std::mt19937_64 rng{[] {
        std::uint64_t seed = 0;
        if (RAND_bytes(reinterpret_cast<unsigned char*>(&seed), sizeof seed) != 1) {
            seed = std::random_device{}();
        }
        return seed;
    }()};
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(32, '0');
    for (std::size_t half = 0; half < 2; ++half) {
        std::uint64_t v = rng();
        for (std::size_t i = 0; i < 16; ++i) {
            out[half * 16 + i] = kHex[v & 0xF];
            v >>= 4;
        }
    }
    return out;
}

bool sane_request_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 128) {
        return false;
    }
    for (const char c : id) {
        const auto u = static_cast<unsigned char>(c);
        if (!(std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == ':')) {
            return false;
        }
    }
    return true;
}

}  // namespace sluice
