#include "proxy/router.hpp"

#include <algorithm>

#include "routing/health.hpp"
#include "routing/pauses.hpp"

namespace sluice::proxy {

namespace {

/// The routes a non-retryable failure sends the request to, by its error class.
const std::vector<const Route*>* class_fallbacks(const Route& route, const GatewayError& e) {
    switch (routing::classify(e)) {
        case routing::ErrorClass::context_length_exceeded:
            return route.on_context_length.empty() ? nullptr : &route.on_context_length;
        case routing::ErrorClass::content_policy:
            return route.on_content_policy.empty() ? nullptr : &route.on_content_policy;
        case routing::ErrorClass::none: break;
    }
    return nullptr;
}

long long whole_seconds_up(Clock::duration d) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
    return std::max<long long>(1, (ms + 999) / 1000);
}

}  // namespace

bool retryable(const RetryConfig& r, const AttemptFailure& f) {
    switch (f.kind) {
        case FailKind::connect: return r.on_connect_error;
        case FailKind::timeout: return r.on_timeout;
        case FailKind::reset: return r.on_reset;
        case FailKind::status:
            return std::find(r.on_status.begin(), r.on_status.end(), f.status) != r.on_status.end();
        case FailKind::other:
        case FailKind::client_gone: return false;
    }
    return false;
}

AttemptPlan::AttemptPlan(const Route& primary, std::string_view client_model,
                         Clock::time_point total_deadline, routing::Rng& rng)
    : primary_(primary), model_(client_model), deadline_(total_deadline), rng_(rng) {
    pending_.push_back(&primary);
}

Step AttemptPlan::next(Clock::time_point now) {
    // Each turn ends a route, or fails to claim a target another request just took: bounded so
    // that no inconsistency between available() and admit() can spin a worker.
    for (int turn = 0; turn < 4096; ++turn) {
        if (deadline_hit_ || final_answer_ || (!route_ && !enter_next_route())) {
            return Step{};
        }
        RouteState& rs = *route_;
        const RouteConfig& rc = *rs.route->config;
        if (rs.used >= rc.retries.attempts) {
            leave_route(nullptr);
            continue;
        }
        if (now >= deadline_) {
            deadline_hit_ = true;
            return Step{};
        }
        if (rs.chosen) {  // its backoff is over
            const std::size_t index = *rs.chosen;
            rs.chosen.reset();
            if (auto step = claim(index, now)) {
                return *step;
            }
            continue;
        }
        collect_candidates(now);
        if (candidates_.empty()) {
            const auto until = wait_for_a_target(now);
            if (!until) {
                leave_route(nullptr);
                continue;
            }
            rs.last_failure_at = Clock::time_point{};  // that wait is the backoff
            Step wait;
            wait.kind = Step::wait;
            wait.until = *until;
            return wait;
        }
        const auto strategy = static_cast<routing::Strategy>(rs.route->strategy);
        const routing::ChooseOptions options{rc.latency_band, rc.latency_explore};
        const std::size_t index = candidates_[routing::choose(strategy, candidates_, rng_, options)].index;
        if (rs.tried[index] && rs.last_failure_at != Clock::time_point{}) {
            // The same target again: exponential backoff with full jitter first.
            const auto until = rs.last_failure_at + routing::backoff_delay(rc.retries, rs.retries, rng_);
            if (until >= deadline_) {
                deadline_hit_ = true;
                return Step{};
            }
            rs.last_failure_at = Clock::time_point{};
            if (until > now) {
                rs.chosen = index;
                Step wait;
                wait.kind = Step::wait;
                wait.until = until;
                return wait;
            }
        }
        if (auto step = claim(index, now)) {
            return *step;
        }
        // Opened meanwhile, or another request took the half-open probe: choose again.
    }
    return Step{};
}

void AttemptPlan::failed(AttemptFailure f, Clock::time_point now) {
    if (!route_) {
        return;
    }
    RouteState& rs = *route_;
    rs.last_failure_at = now;
    last_ = std::move(f);
    if (last_->final) {
        final_answer_ = true;
        route_.reset();
        return;
    }
    const RouteConfig& rc = *rs.route->config;
    if (!retryable(rc.retries, *last_)) {
        const auto* by_class = class_fallbacks(*rs.route, last_->error);
        final_answer_ = by_class == nullptr;
        leave_route(by_class);
        return;
    }
    if (last_->retry_after && *last_->retry_after > rc.retries.retry_after_cap) {
        rs.skipped[rs.current] = 1;  // the provider wants a longer pause than we wait: move on
    }
}

GatewayError AttemptPlan::final_error(Clock::time_point now) const {
    if (last_) {
        GatewayError e = last_->error;
        if (deadline_hit_) {
            e.message += " (retries ended by the route's total deadline of " +
                         std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            primary_.config->total_timeout)
                                            .count()) +
                         " ms)";
        }
        return e;
    }
    if (deadline_hit_) {
        return GatewayError::upstream_timeout(
            "The route's total deadline passed before any provider could be tried.");
    }
    if (!unavailable_otherwise_ && earliest_unpaused_ != Clock::time_point::max()) {
        // Only Retry-After pauses stood in the way: the client is rate limited, and its SDK
        // should raise RateLimitError and back off for the shortest remaining pause.
        GatewayError e;
        e.status = 429;
        e.type = "rate_limit_error";
        e.code = "rate_limit_exceeded";
        e.source = ErrorSource::upstream;
        e.retry_after = std::to_string(whole_seconds_up(earliest_unpaused_ - now));
        e.message = "The providers of route '" + primary_.name + "' asked to wait before model '" +
                    std::string(model_) + "' is sent again; retry after " + e.retry_after + " s.";
        return e;
    }
    // No attempt was made: every target's circuit is open (or failing its health check).
    auto e = GatewayError::upstream_error(
        "No target of route '" + primary_.name + "' is available: circuits open or providers backing off.",
        "no_available_target");
    e.status = 503;
    if (earliest_back_ != Clock::time_point::max()) {
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(earliest_back_ - now).count() + 1;
        e.retry_after = std::to_string(std::max<long long>(1, secs));
    }
    return e;
}

bool AttemptPlan::enter_next_route() {
    while (next_route_ < pending_.size() && visited_.size() < kMaxRoutes) {
        const Route* r = pending_[next_route_++];
        if (std::find(visited_.begin(), visited_.end(), r) != visited_.end()) {
            continue;
        }
        visited_.push_back(r);
        RouteState& rs = route_.emplace();
        rs.route = r;
        rs.tried.assign(r->targets.size(), 0);
        rs.skipped.assign(r->targets.size(), 0);
        return true;
    }
    return false;
}

void AttemptPlan::leave_route(const std::vector<const Route*>* by_class) {
    const Route& route = *route_->route;
    route_.reset();
    if (by_class != nullptr) {
        // An error class with its own routes: those, instead of the generic fallbacks.
        pending_.insert(pending_.begin() + static_cast<std::ptrdiff_t>(next_route_), by_class->begin(),
                        by_class->end());
        return;
    }
    pending_.insert(pending_.end(), route.fallbacks.begin(), route.fallbacks.end());
}

Clock::time_point AttemptPlan::paused_until(const Target& t, Clock::time_point now) const {
    return t.pauses ? t.pauses->paused_until(t.upstream_model(model_), now) : Clock::time_point::min();
}

void AttemptPlan::collect_candidates(Clock::time_point now) {
    const RouteState& rs = *route_;
    const Route& route = *rs.route;
    const auto strategy = static_cast<routing::Strategy>(route.strategy);
    candidates_.clear();
    bool any_untried = false;
    for (std::size_t i = 0; i < route.targets.size(); ++i) {
        const Target& t = route.targets[i];
        if (rs.skipped[i] || !t.health->available(now) || paused_until(t, now) > now) {
            continue;
        }
        routing::Candidate c;
        c.index = i;
        c.weight = t.weight;
        if (strategy == routing::Strategy::least_latency) {
            c.score = t.health->latency_score();
        } else if (strategy == routing::Strategy::least_busy) {
            c.in_flight = t.health->in_flight.load(std::memory_order_relaxed);
        }
        any_untried = any_untried || !rs.tried[i];
        candidates_.push_back(c);
    }
    if (any_untried) {
        // Targets that already failed this request come only after the others.
        const auto untried_end =
            std::remove_if(candidates_.begin(), candidates_.end(),
                           [&rs](const routing::Candidate& c) { return rs.tried[c.index] != 0; });
        candidates_.erase(untried_end, candidates_.end());
    }
}

std::optional<Clock::time_point> AttemptPlan::wait_for_a_target(Clock::time_point now) {
    const RouteState& rs = *route_;
    const Route& route = *rs.route;
    Clock::time_point soonest = Clock::time_point::max();
    for (std::size_t i = 0; i < route.targets.size(); ++i) {
        if (rs.skipped[i]) {
            continue;
        }
        const auto healthy_at = route.targets[i].health->available_at(now);
        const auto unpaused_at = paused_until(route.targets[i], now);
        if (healthy_at > now) {
            unavailable_otherwise_ = true;
        } else if (unpaused_at > now) {
            earliest_unpaused_ = std::min(earliest_unpaused_, unpaused_at);
        }
        soonest = std::min(soonest, std::max(healthy_at, unpaused_at));
    }
    earliest_back_ = std::min(earliest_back_, soonest);
    if (soonest == Clock::time_point::max() || soonest - now > route.config->retries.retry_after_cap ||
        soonest >= deadline_) {
        return std::nullopt;
    }
    return soonest;
}

std::optional<Step> AttemptPlan::claim(std::size_t index, Clock::time_point now) {
    RouteState& rs = *route_;
    const Target& target = rs.route->targets[index];
    const routing::Admit admit = target.health->admit(now);
    if (admit == routing::Admit::no) {
        return std::nullopt;
    }
    ++rs.used;
    rs.retries += rs.tried[index] ? 1 : 0;
    rs.tried[index] = 1;
    rs.current = index;
    Step step;
    step.kind = Step::attempt;
    step.route = rs.route;
    step.target = &target;
    step.probe = admit == routing::Admit::probe;
    return step;
}

}  // namespace sluice::proxy
