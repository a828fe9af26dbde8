#pragma once

// What one attempt at an upstream came to, as a typed value the router and the retry policy
// read (never a string, a sentinel status or a flag threaded through callers).

#include <chrono>
#include <optional>

#include <sluice/error.hpp>

namespace sluice::proxy {

using Clock = std::chrono::steady_clock;

/// How an attempt failed, for the retry policy and the circuit breaker.
enum class FailKind {
    connect,      ///< no connection (refused, DNS, TLS, pool exhausted) or the request not fully sent
    timeout,      ///< connect, first-byte or first-token timeout
    reset,        ///< the provider closed the connection before answering
    status,       ///< the provider answered with an error status
    other,        ///< anything else (invalid answer, cut body, draining): never retried
    client_gone,  ///< the client left meanwhile: nothing more to do for this request
};

/// An attempt that ended without answering the client: the router may try again.
struct AttemptFailure {
    GatewayError error;
    FailKind kind = FailKind::other;
    int status = 0;                              ///< the provider's status (kind status)
    std::optional<Clock::duration> retry_after;  ///< what the provider asked for
    bool final = false;  ///< never retried nor sent to a fallback (an account out of quota)
    /// The gateway ended it (a stream filter's stop, a drain): it says nothing about the target.
    bool gateway_verdict = false;
};

/// How an attempt ended: the client was answered (fully, or the stream ended with a terminal
/// event), the client left, or it failed with nothing sent (the router decides what is next).
struct AttemptResult {
    enum class Kind {
        answered,
        client_gone,
        failed
    };
    Kind kind = Kind::answered;
    std::optional<AttemptFailure> failure;  ///< set for failed

    static AttemptResult answered() { return {}; }
    static AttemptResult client_gone() { return {Kind::client_gone, std::nullopt}; }
    static AttemptResult failed(AttemptFailure f) { return {Kind::failed, std::move(f)}; }
};

}  // namespace sluice::proxy
