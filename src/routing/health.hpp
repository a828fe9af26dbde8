#pragma once

// Shared, thread-safe state of one route target: circuit breaker, in-flight count and latency
// averages. Workers on every thread read and update it; the happy path takes one uncontended
// mutex per attempt. Nothing is logged while the mutex is held.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <sluice/config.hpp>

namespace sluice::routing {

using Clock = std::chrono::steady_clock;

enum class Admit {
    no,     ///< open circuit, or a half-open probe already running
    yes,    ///< closed circuit
    probe,  ///< half-open: this request is the one probe
};

enum class BreakerState {
    closed,
    open,
    half_open
};

class TargetHealth {
public:
    TargetHealth(BreakerConfig cfg, std::string label) : cfg_(cfg), label_(std::move(label)) {}
    TargetHealth(const TargetHealth&) = delete;
    TargetHealth& operator=(const TargetHealth&) = delete;

    /// Whether a request may be sent now. `probe` claims the single half-open probe: the caller
    /// must later report on_success/on_failure(probe=true) or release_probe().
    Admit admit(Clock::time_point now);
    /// Like admit() but claims nothing: for choosing among targets.
    bool available(Clock::time_point now) const;
    /// The earliest time this target may take traffic again (now or earlier when available;
    /// time_point::max() while a probe is running).
    Clock::time_point available_at(Clock::time_point now) const;

    void on_success(Clock::time_point now, bool probe);
    /// A failure that counts against the target (connect error, timeout, 5xx, auth; never a
    /// 429, which is a rate limit, not ill health). When it opens the circuit, the cooldown is
    /// at least `retry_after`. The Retry-After pause itself is the provider's Pauses' business.
    void on_failure(Clock::time_point now, bool probe, Clock::duration retry_after);
    /// A probe ended without a verdict (the client left): the next request probes instead.
    void release_probe();

    BreakerState state(Clock::time_point now) const;

    /// Latency averages (EWMA) for least_latency: time to first token and time per output token.
    void observe(double ttft_ms, double tpot_ms);
    /// Expected milliseconds for a nominal answer; < 0 when nothing was observed yet.
    double latency_score() const;

    std::atomic<int> in_flight{0};

    /// Ties the target to its provider's active health checks: while the flag is false the
    /// target takes no traffic.
    void set_provider_up(std::shared_ptr<const std::atomic<bool>> up) { provider_up_ = std::move(up); }
    bool provider_down() const noexcept {
        return provider_up_ && !provider_up_->load(std::memory_order_relaxed);
    }

    const std::string& label() const noexcept { return label_; }
    const BreakerConfig& config() const noexcept { return cfg_; }

private:
    static constexpr int kBuckets = 10;
    struct Bucket {
        std::int64_t epoch = -1;
        std::uint32_t total = 0;
        std::uint32_t failures = 0;
    };

    void record(Clock::time_point now, bool failure);  // mutex held
    /// Opens the circuit (mutex held); returns the line to log once it is released.
    std::string open(Clock::time_point now, Clock::duration retry_after, const char* why);
    bool ratio_tripped(Clock::time_point now) const;  // mutex held

    const BreakerConfig cfg_;
    const std::string label_;
    std::shared_ptr<const std::atomic<bool>> provider_up_;
    mutable std::mutex mutex_;
    bool open_ = false;
    bool probing_ = false;
    unsigned consecutive_ = 0;
    Clock::time_point blocked_until_{};  ///< the open circuit's cooldown
    std::array<Bucket, kBuckets> buckets_{};
    double ttft_ms_ = -1.0;
    double tpot_ms_ = -1.0;
};

}  // namespace sluice::routing
