#pragma once

// The stream relay: upstream bytes -> body framing -> the provider's decoder (SSE events, or
// raw bytes for binary streams) -> the client's events -> the client writer, one HTTP chunk per
// upstream read, written before the next read (a slow client slows the upstream read:
// backpressure without buffers).
//
// A stream commits at its first relayed byte: the client's response head goes out with it.
// Before that every failure (no first token in time, a stream cut before its first event, the
// provider's error event) comes back uncommitted for the router; after it, a failure ends the
// stream with a terminal error event in the client's dialect and is never retried.

#include <optional>
#include <string_view>

#include <sluice/request_context.hpp>

#include "proxy/attempt_guard.hpp"
#include "proxy/outcome.hpp"
#include "proxy/upstream_exchange.hpp"
#include "server/server.hpp"

namespace sluice::proxy {

/// Where the stream comes from: an upstream connection whose head was read, or the complete
/// body an in-process provider produced.
struct StreamSource {
    UpstreamConnection* conn = nullptr;
    const http1::MessageHead* head = nullptr;
    std::string_view local_body;
    /// The request as the provider took it (the client's, or the front door's translation).
    const ApiRequest* request = nullptr;
};

struct RelayResult {
    bool reusable = false;                      ///< the upstream connection may go back to the pool
    std::optional<AttemptFailure> uncommitted;  ///< failed before the first byte to the client
};

/// Relays one stream to the client. `guard` (may be null) gets the verdict at commit and on a
/// failure after it, and the latency sample of a clean end.
net::awaitable<RelayResult> relay_stream(ClientLink& link, RequestContext& ctx, const Provider& provider,
                                         StreamSource source, Clock::time_point deadline,
                                         const AttemptTimeouts& t, AttemptGuard* guard,
                                         Clock::time_point attempt_began);

}  // namespace sluice::proxy
