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
    /// Values below 2^53 thousandths are printed from one integer (rounded half away from zero),
    /// without the shortest-round-trip machinery of to_chars on a double.
    static NumberText fixed3(double v) noexcept {
        NumberText r;
        const double scaled = v * 1000.0;
        if (!(scaled > -9.0e15 && scaled < 9.0e15)) {  // also NaN
            auto res = std::to_chars(r.buf_, r.buf_ + sizeof r.buf_, v, std::chars_format::fixed, 3);
            if (res.ec != std::errc{}) {  // too many digits for the buffer: the shortest form
                res = std::to_chars(r.buf_, r.buf_ + sizeof r.buf_, v);
            }
            r.n_ = static_cast<std::size_t>(res.ptr - r.buf_);
            return r;
        }
        auto t = static_cast<std::int64_t>(scaled < 0 ? scaled - 0.5 : scaled + 0.5);
        char* p = r.buf_;
        if (t < 0) {
            *p++ = '-';
            t = -t;
        }
        p = std::to_chars(p, r.buf_ + sizeof r.buf_ - 4, t / 1000).ptr;
        const auto frac = static_cast<int>(t % 1000);
        *p++ = '.';
        *p++ = static_cast<char>('0' + frac / 100);
        *p++ = static_cast<char>('0' + frac / 10 % 10);
        *p++ = static_cast<char>('0' + frac % 10);
        r.n_ = static_cast<std::size_t>(p - r.buf_);
        return r;
    }
    std::string_view view() const noexcept { return {buf_, n_}; }

private:
    char buf_[48];
    std::size_t n_ = 0;
};

}  // namespace sluice
