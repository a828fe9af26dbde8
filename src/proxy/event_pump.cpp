#include "proxy/event_pump.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice::proxy {

bool EventPump::decode(std::string_view bytes, StreamRelay& relay, std::string& out) {
    if (bytes.empty()) {
        return true;
    }
    const bool ok = decoder_.feed(bytes, [this, &relay, &out](const sse::Event& ev) {
        if (!relay_failed_ && !relay.on_event(ev, out)) {
            relay_failed_ = true;  // later events of this read are ignored
        }
    });
    return ok && !relay_failed_;
}

EventPump::Searcher::Searcher(std::string_view m) : needle(m) {
    // The two bytes compared first: the outermost ones that are not JSON punctuation. A quoted key
    // starts and ends with '"', and in JSON text quote pairs 7 bytes apart are everywhere
    // ("model", "index", "delta"); its first and last letters 4 apart are rare.
    const auto punctuation = [](char c) { return c == '"' || c == '\\' || c == ':' || c == ','; };
    std::size_t a = 0;
    while (a + 1 < m.size() && punctuation(m[a])) {
        ++a;
    }
    std::size_t b = m.empty() ? 0 : m.size() - 1;
    while (b > a + 1 && punctuation(m[b])) {
        --b;
    }
    first_at = a;
    last_at = b;
}

std::size_t EventPump::Searcher::find(const char* d, std::size_t from, std::size_t n) const {
    // Compare two of the needle's bytes (first_at and last_at) against 16 positions at once and
    // verify only where both match (W. Mula's "SIMD-friendly" substring search).
    const std::size_t m = needle.size();
    if (m == 0 || n < m || from > n - m) {
        return std::string::npos;
    }
    const char first = needle[first_at];
    const char last = needle[last_at];
    std::size_t i = from;
#if defined(__SSE2__)
    const __m128i vf = _mm_set1_epi8(first);
    const __m128i vl = _mm_set1_epi8(last);
    for (; i + m + 16 <= n + 1; i += 16) {
        const __m128i bf = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i + first_at));
        const __m128i bl = _mm_loadu_si128(reinterpret_cast<const __m128i*>(d + i + last_at));
        auto mask = static_cast<unsigned>(
            _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(bf, vf), _mm_cmpeq_epi8(bl, vl))));
        while (mask != 0) {
            const auto bit = static_cast<std::size_t>(__builtin_ctz(mask));
            if (std::memcmp(d + i + bit, needle.data(), m) == 0) {
                return i + bit;
            }
            mask &= mask - 1;
        }
    }
#endif
    for (; i + m <= n; ++i) {
        if (d[i + first_at] == first && d[i + last_at] == last && std::memcmp(d + i, needle.data(), m) == 0) {
            return i;
        }
    }
    return std::string::npos;
}

void EventPump::build_searchers(std::span<const std::string_view> markers) {
    searchers_built_ = true;
    for (const std::string_view m : markers.first(std::min(markers.size(), kMaxMarkers))) {
        if (!m.empty() && m.size() <= kMaxMarkerBytes) {
            searchers_.emplace_back(m);
        }
    }
}

bool EventPump::feed(std::string& payload, StreamRelay& relay, std::string& out, bool at_end) {
    const bool fast =
        relay.takes_plain_data() && !decoder_.has_partial() && payload.find('\r') == std::string::npos;
    if (!fast) {
        const bool ok = decode(payload, relay, out);
        payload.clear();
        return ok;
    }
    const char* const d = payload.data();
    const std::size_t n = payload.size();
    // Where each marker occurs next (npos: not in this read): searched once per read and again
    // only past an event that held it, so a plain event costs a few comparisons.
    if (!searchers_built_) {
        build_searchers(relay.plain_data_markers());
    }
    std::array<std::size_t, kMaxMarkers> next{};
    const std::size_t marker_count = searchers_.size();
    const auto find_from = [&](std::size_t i, std::size_t from) { return searchers_[i].find(d, from, n); };
    for (std::size_t i = 0; i < marker_count; ++i) {
        next[i] = find_from(i, 0);
    }
    std::size_t pos = 0;
    while (pos < n) {
        // The event ends at the first "\n\n"; any other LF on the way makes it multi-line.
        bool one_line = true;
        std::size_t lf = pos;
        std::size_t end = 0;
        while (true) {
            const auto* p = static_cast<const char*>(std::memchr(d + lf, '\n', n - lf));
            if (p == nullptr) {
                break;
            }
            lf = static_cast<std::size_t>(p - d);
            if (lf + 1 < n && d[lf + 1] == '\n') {
                end = lf + 2;
                break;
            }
            if (lf + 1 == n) {
                break;  // the blank line may be in the next read
            }
            one_line = false;
            ++lf;
        }
        if (end == 0) {
            break;
        }
        const std::string_view raw(d + pos, end - pos);
        bool marked = false;
        for (std::size_t i = 0; i < marker_count; ++i) {
            if (next[i] < end) {
                marked = true;
                next[i] = find_from(i, end);
            }
        }
        const bool plain = !marked && one_line && raw.size() >= 8 && raw.compare(0, 6, "data: ") == 0;
        if (!(plain && relay.on_plain_data(raw.substr(6, raw.size() - 8), raw, out)) &&
            !decode(raw, relay, out)) {
            payload.clear();
            return false;
        }
        pos = end;
    }
    payload.erase(0, pos);
    if (at_end || payload.size() > kMaxCarry) {
        const bool ok = decode(payload, relay, out);
        payload.clear();
        return ok;
    }
    return true;
}

}  // namespace sluice::proxy
