#pragma once

// Pure routing decisions, kept apart from I/O so they can be tested with a seeded generator:
// the strategies' choice among available targets, backoff delays, Retry-After parsing and
// the error classes that select fallback routes.

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string_view>

#include <sluice/config.hpp>

namespace sluice {
struct GatewayError;
}

namespace sluice::routing {

enum class Strategy {
    weighted,
    fallback,
    least_latency,
    least_busy
};
Strategy parse_strategy(std::string_view name) noexcept;
const char* strategy_name(Strategy s) noexcept;

using Rng = std::minstd_rand;

/// One target that may take the request now.
struct Candidate {
    std::size_t index = 0;  ///< position in the route's target list
    unsigned weight = 1;
    double score = -1.0;  ///< least_latency: expected ms; < 0 = not measured yet
    int in_flight = 0;    ///< least_busy
};

struct ChooseOptions {
    double band = 0.2;      ///< least_latency fairness band (fraction above the best score)
    double explore = 0.05;  ///< least_latency share of random picks
};

/// Picks one of `c` (non-empty, in route order) and returns its position in `c`.
std::size_t choose(Strategy s, std::span<const Candidate> c, Rng& rng, const ChooseOptions& o);
/// Weighted random: position in `c` with probability weight / total.
std::size_t choose_weighted(std::span<const Candidate> c, Rng& rng);

/// Full-jitter exponential backoff before retry number `retry` (0 = the first retry):
/// uniform in [0, min(cap, base * 2^retry)].
std::chrono::milliseconds backoff_delay(const RetryConfig& r, unsigned retry, Rng& rng);

/// How long a provider asked to wait: `retry-after-ms` / `x-ms-retry-after-ms` (milliseconds),
/// else `Retry-After` in seconds or as an HTTP date (relative to `now_unix` seconds). nullopt
/// when no header is present or none parses.
std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view retry_after_ms,
                                                           std::string_view ms_retry_after_ms,
                                                           std::string_view retry_after,
                                                           std::int64_t now_unix);

/// Errors some routes answer with another route.
enum class ErrorClass {
    none,
    context_length_exceeded,
    content_policy
};
/// Classifies a provider's (already translated) error by its code and message, whatever the
/// provider's dialect.
ErrorClass classify(const GatewayError& e);
const char* error_class_name(ErrorClass c) noexcept;

}  // namespace sluice::routing
