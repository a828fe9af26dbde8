#pragma once

// Byte scans of the parsers' hot loops, 16 bytes at a time with SSE2 (every x86-64 has it) and
// a plain loop elsewhere and for the tail. Each returns the offset of the first byte in
// [from, size) that matches, or `size` when none does.

#include <array>
#include <cstddef>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice::bytes {

/// The first CR or LF (HTTP head lines).
inline std::size_t find_cr_or_lf(std::string_view s, std::size_t from) noexcept {
    std::size_t i = from;
#if defined(__SSE2__)
    const __m128i cr = _mm_set1_epi8('\r');
    const __m128i lf = _mm_set1_epi8('\n');
    for (; i + 16 <= s.size(); i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
        const int m = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
        if (m != 0) {
            return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(m)));
        }
    }
#endif
    while (i < s.size() && s[i] != '\r' && s[i] != '\n') {
        ++i;
    }
    return i;
}

/// The first byte a JSON string scanner must look at: a quote, a backslash, a control character
/// or a non-ASCII byte (the start of a UTF-8 sequence to validate).
inline std::size_t find_json_string_special(std::string_view s, std::size_t from) noexcept {
    std::size_t i = from;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    for (; i + 16 <= s.size(); i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
        // Signed compare: bytes >= 0x80 are negative, so "< 0x20" catches them too.
        const __m128i special = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)), _mm_cmplt_epi8(v, space));
        const int m = _mm_movemask_epi8(special);
        if (m != 0) {
            return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(m)));
        }
    }
#endif
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) {
            break;
        }
        ++i;
    }
    return i;
}

/// RFC 9110 token characters (header names, methods), as a table.
inline constexpr std::array<bool, 256> kTchar = [] {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) {
        t[static_cast<std::size_t>(c)] = true;
    }
    for (int c = 'a'; c <= 'z'; ++c) {
        t[static_cast<std::size_t>(c)] = true;
    }
    for (int c = 'A'; c <= 'Z'; ++c) {
        t[static_cast<std::size_t>(c)] = true;
    }
    for (const char c : std::string_view("!#$%&'*+-.^_`|~")) {
        t[static_cast<unsigned char>(c)] = true;
    }
    return t;
}();

inline bool is_tchar(unsigned char c) noexcept {
    return kTchar[c];
}

/// The first byte not allowed in an HTTP field value: a control character other than HTAB, or
/// DEL (obs-text, 0x80-0xFF, is allowed).
inline std::size_t find_invalid_field_byte(std::string_view s, std::size_t from) noexcept {
    std::size_t i = from;
#if defined(__SSE2__)
    const __m128i space = _mm_set1_epi8(0x20);
    const __m128i tab = _mm_set1_epi8('\t');
    const __m128i del = _mm_set1_epi8(0x7f);
    for (; i + 16 <= s.size(); i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data() + i));
        // Unsigned v >= 0x20 <=> max(v, 0x20) == v.
        const __m128i printable = _mm_cmpeq_epi8(_mm_max_epu8(v, space), v);
        const __m128i ok =
            _mm_andnot_si128(_mm_cmpeq_epi8(v, del), _mm_or_si128(printable, _mm_cmpeq_epi8(v, tab)));
        const int m = _mm_movemask_epi8(ok) ^ 0xFFFF;
        if (m != 0) {
            return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(m)));
        }
    }
#endif
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            break;
        }
        ++i;
    }
    return i;
}

}  // namespace sluice::bytes
