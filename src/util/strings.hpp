#pragma once

#include <array>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice {

/// ASCII case-insensitive equality (HTTP header names).
bool iequals(std::string_view a, std::string_view b) noexcept;
std::string_view trim_ows(std::string_view s) noexcept;
/// Glob match: `*` any run, `?` one char, `[abc]`/`[a-z]`/`[!x]` classes, `\` escapes.
bool glob_match(std::string_view pattern, std::string_view text) noexcept;
bool is_glob(std::string_view pattern) noexcept;
/// RFC 3986 percent-encoding of one URL path segment (unreserved characters kept).
std::string uri_encode_segment(std::string_view s);
/// SHA-256 of `data`, raw (32 bytes). The digest implementation is fetched once per process and
/// each thread reuses one context, so hashing a key per request costs the hash alone.
std::array<unsigned char, 32> sha256(std::string_view data);
/// Lower-case hex SHA-256 digest.
std::string sha256_hex(std::string_view data);
/// Constant-time comparison of two equal-length byte strings; false when lengths differ.
bool constant_time_equals(std::string_view a, std::string_view b) noexcept;
/// A random 32-hex-digit id.
std::string random_request_id();
/// Client-supplied request ids are kept when 1..128 chars of [A-Za-z0-9._:-].
bool sane_request_id(std::string_view id) noexcept;

/// A number as text in a buffer of its own, for the hot paths that write log lines and headers
/// (no allocation, no printf).
class NumberText {
public:
    static NumberText integer(std::int64_t v) noexcept {
        NumberText r;
        r.n_ = static_cast<std::size_t>(std::to_chars(r.buf_, r.buf_ + sizeof r.buf_, v).ptr - r.buf_);
        return r;
    }
    /// Exactly three decimals ("12.345"; microseconds / 1000.0 print as exact milliseconds).
    static NumberText fixed3(double v) noexcept {
        NumberText r;
        r.n_ = static_cast<std::size_t>(
            std::to_chars(r.buf_, r.buf_ + sizeof r.buf_, v, std::chars_format::fixed, 3).ptr - r.buf_);
        return r;
    }
    std::string_view view() const noexcept { return {buf_, n_}; }

private:
    char buf_[48];
    std::size_t n_ = 0;
};

}  // namespace sluice
