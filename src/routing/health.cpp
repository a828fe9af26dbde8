#include "routing/health.hpp"

#include "log/log.hpp"

namespace sluice::routing {

namespace {
constexpr double kAlpha = 0.2;          // EWMA weight of a new sample
constexpr double kNominalTokens = 100;  // least_latency scores a 100-token answer

std::int64_t to_ms(Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}
}  // namespace

Admit TargetHealth::admit(Clock::time_point now) {
    if (provider_down()) {
        return Admit::no;
    }
    std::lock_guard lock(mutex_);
    if (now < blocked_until_) {
        return Admit::no;
    }
    if (!open_) {
        return Admit::yes;
    }
    if (probing_) {
        return Admit::no;
    }
    probing_ = true;
    return Admit::probe;
}

bool TargetHealth::available(Clock::time_point now) const {
    if (provider_down()) {
        return false;
    }
    std::lock_guard lock(mutex_);
    return now >= blocked_until_ && !(open_ && probing_);
}

Clock::time_point TargetHealth::available_at(Clock::time_point now) const {
    if (provider_down()) {
        return Clock::time_point::max();  // until a health check passes
    }
    std::lock_guard lock(mutex_);
    if (open_ && probing_) {
        return Clock::time_point::max();
    }
    return blocked_until_ > now ? blocked_until_ : now;
}

BreakerState TargetHealth::state(Clock::time_point now) const {
    std::lock_guard lock(mutex_);
    if (!open_) {
        return BreakerState::closed;
    }
    return probing_ || now >= blocked_until_ ? BreakerState::half_open : BreakerState::open;
}

void TargetHealth::record(Clock::time_point now, bool failure) {
    const auto bucket_len = std::max<std::int64_t>(1, to_ms(cfg_.window) / kBuckets);
    const std::int64_t epoch = to_ms(now.time_since_epoch()) / bucket_len;
    Bucket& b = buckets_[static_cast<std::size_t>(epoch % kBuckets)];
    if (b.epoch != epoch) {
        b = Bucket{epoch, 0, 0};
    }
    ++b.total;
    b.failures += failure ? 1 : 0;
}

bool TargetHealth::ratio_tripped(Clock::time_point now) const {
    if (cfg_.error_ratio <= 0.0) {
        return false;
    }
    const auto bucket_len = std::max<std::int64_t>(1, to_ms(cfg_.window) / kBuckets);
    const std::int64_t epoch = to_ms(now.time_since_epoch()) / bucket_len;
    std::uint64_t total = 0;
    std::uint64_t failures = 0;
    for (const auto& b : buckets_) {
        if (b.epoch > epoch - kBuckets && b.epoch <= epoch) {
            total += b.total;
            failures += b.failures;
        }
    }
    return total >= cfg_.min_requests &&
           static_cast<double>(failures) >= cfg_.error_ratio * static_cast<double>(total);
}

std::string TargetHealth::open(Clock::time_point now, Clock::duration retry_after, const char* why) {
    const Clock::duration cooldown = std::max<Clock::duration>(cfg_.cooldown, retry_after);
    open_ = true;
    probing_ = false;
    consecutive_ = 0;
    buckets_ = {};
    blocked_until_ = std::max(blocked_until_, now + cooldown);
    // Logged by the caller once the mutex is released: a blocked log sink must not hold up
    // every worker that consults this target.
    return "circuit of target " + label_ + " opened (" + why + "); no traffic for " +
           std::to_string(to_ms(blocked_until_ - now)) + " ms, then one probe";
}

void TargetHealth::on_success(Clock::time_point now, bool probe) {
    bool closed = false;
    {
        std::lock_guard lock(mutex_);
        if (probe) {
            closed = open_;
            open_ = false;
            probing_ = false;
            consecutive_ = 0;
            buckets_ = {};
        } else if (!open_) {  // else: admitted before the circuit opened; the probe decides
            consecutive_ = 0;
            if (cfg_.enabled) {
                record(now, false);
            }
        }
    }
    if (closed) {
        log::info("circuit of target {} closed: the probe succeeded", label_);
    }
}

void TargetHealth::on_failure(Clock::time_point now, bool probe, Clock::duration retry_after) {
    std::string opened;
    {
        std::lock_guard lock(mutex_);
        if (!cfg_.enabled) {
            return;  // no circuit at all
        }
        if (probe) {
            opened = open(now, retry_after, "the half-open probe failed");
        } else if (!open_) {
            ++consecutive_;
            record(now, true);
            if (cfg_.consecutive_failures > 0 && consecutive_ >= cfg_.consecutive_failures) {
                opened = open(now, retry_after, "consecutive failures");
            } else if (ratio_tripped(now)) {
                opened = open(now, retry_after, "error ratio over the window");
            }
        }
    }
    if (!opened.empty()) {
        log::warn("{}", opened);
    }
}

void TargetHealth::release_probe() {
    std::lock_guard lock(mutex_);
    probing_ = false;
}

void TargetHealth::observe(double ttft_ms, double tpot_ms) {
    std::lock_guard lock(mutex_);
    if (ttft_ms >= 0) {
        ttft_ms_ = ttft_ms_ < 0 ? ttft_ms : ttft_ms_ + kAlpha * (ttft_ms - ttft_ms_);
    }
    if (tpot_ms >= 0) {
        tpot_ms_ = tpot_ms_ < 0 ? tpot_ms : tpot_ms_ + kAlpha * (tpot_ms - tpot_ms_);
    }
}

double TargetHealth::latency_score() const {
    std::lock_guard lock(mutex_);
    if (ttft_ms_ < 0) {
        return -1.0;
    }
    return ttft_ms_ + (tpot_ms_ < 0 ? 0.0 : tpot_ms_ * kNominalTokens);
}

}  // namespace sluice::routing
