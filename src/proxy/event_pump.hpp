#pragma once

// The event pump: moves SSE body bytes through a provider's StreamRelay. Events in the one
// canonical shape ("data: <one line>\n\n", no CR) go to the relay's fast path as raw bytes: the
// pump finds their boundaries with memchr and the relay decides with a few comparisons whether
// to pass them on untouched (most chunks) or decode them (usage, errors). Everything else goes
// through the WHATWG decoder, event by event, in order. The output is the same byte for byte as
// decoding every event (tests/unit/proxy/event_pump_test.cpp checks that on every split).

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <sluice/provider.hpp>

#include "sse/sse.hpp"

namespace sluice::proxy {

class EventPump {
public:
    /// Consumes the complete events of `payload` (an incomplete last event stays in it for the
    /// next call, unless `at_end`, when it goes to the decoder). Appends the client's events to
    /// `out`. false: the relay refused an event (its error() tells why) or a cap was crossed
    /// (failure() names which).
    bool feed(std::string& payload, StreamRelay& relay, std::string& out, bool at_end);
    /// "line" or "event" when a decoder cap was crossed; empty otherwise.
    const char* failure() const noexcept { return decoder_.failure(); }
    bool decoder_failed() const noexcept { return decoder_.failed(); }
    /// The relay refused an event (its error() tells why); takes precedence over a cap.
    bool relay_failed() const noexcept { return relay_failed_; }
    /// A partial event is buffered (the stream ended mid-event if it stops here).
    bool has_partial() const noexcept { return decoder_.has_partial(); }

    /// Above this an incomplete event is handed to the decoder (which enforces the caps).
    static constexpr std::size_t kMaxCarry = 64 * 1024;

    static constexpr std::size_t kMaxMarkers = 8;
    static constexpr std::size_t kMaxMarkerBytes = 64;

private:
    /// One marker (glibc's memmem is several times slower on these short needles in JSON text).
    struct Searcher {
        explicit Searcher(std::string_view m);
        /// Offset of the first occurrence in d[from, n), or npos.
        std::size_t find(const char* d, std::size_t from, std::size_t n) const;
        std::string_view needle;
        std::size_t first_at = 0;  ///< offsets of the two bytes the vector loop compares
        std::size_t last_at = 0;
    };
    bool decode(std::string_view bytes, StreamRelay& relay, std::string& out);
    void build_searchers(std::span<const std::string_view> markers);

    std::vector<Searcher> searchers_;  ///< the relay's markers
    bool searchers_built_ = false;

    sse::Decoder decoder_;
    bool relay_failed_ = false;
};

}  // namespace sluice::proxy
