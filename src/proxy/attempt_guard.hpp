#pragma once

#include <atomic>

#include "proxy/outcome.hpp"
#include "routing/health.hpp"

namespace sluice::proxy {

/// Milliseconds from `a` to `b`, for latency samples.
inline double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

/// One attempt's claim on its target: in-flight count, breaker verdict, latency sample. The
/// verdict is given once; an attempt that ends without one (the client left) releases a
/// half-open probe so the next request probes instead.
class AttemptGuard {
public:
    /// `measure`: keep latency samples (only least_latency routes read them).
    AttemptGuard(routing::TargetHealth& h, bool probe, bool measure)
        : h_(h), probe_(probe), measure_(measure) {
        h_.in_flight.fetch_add(1, std::memory_order_relaxed);
    }
    ~AttemptGuard() {
        h_.in_flight.fetch_sub(1, std::memory_order_relaxed);
        if (!decided_ && probe_) {
            h_.release_probe();
        }
    }
    AttemptGuard(const AttemptGuard&) = delete;
    AttemptGuard& operator=(const AttemptGuard&) = delete;

    /// The target answered usefully (2xx committed, or a client error it judged correctly).
    void success() {
        if (!decided_) {
            decided_ = true;
            h_.on_success(Clock::now(), probe_);
        }
    }
    void failure(Clock::duration retry_after) {
        if (!decided_) {
            decided_ = true;
            h_.on_failure(Clock::now(), probe_, retry_after);
        } else {
            h_.on_failure(Clock::now(), false, retry_after);  // e.g. cut mid-stream after commit
        }
    }
    /// The attempt failed for a reason that says nothing about the target (our own limits).
    void neutral() {
        if (!decided_) {
            decided_ = true;
            if (probe_) {
                h_.release_probe();
            }
        }
    }
    void observe(double ttft_ms, double tpot_ms) {
        if (measure_) {
            h_.observe(ttft_ms, tpot_ms);
        }
    }

private:
    routing::TargetHealth& h_;
    bool probe_;
    bool measure_;
    bool decided_ = false;
};

}  // namespace sluice::proxy
