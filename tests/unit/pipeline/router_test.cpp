// The router on a fake clock: every decision takes `now` from the test, so retries, backoff,
// Retry-After pauses, breakers, deadlines and fallbacks are checked without sleeping.
#include <gtest/gtest.h>

#include <deque>
#include <memory>

#include <sluice/request_context.hpp>

#include "proxy/router.hpp"
#include "routing/health.hpp"
#include "routing/pauses.hpp"

namespace sluice::proxy {
namespace {

using namespace std::chrono_literals;

/// Routes and targets as the runtime builds them, without providers (the router never calls one).
struct Fixture {
    std::deque<RouteConfig> configs;
    std::deque<Route> routes;
    routing::Rng rng{42};
    Clock::time_point t0 = Clock::time_point{} + 1000h;  // the fake clock's start

    Route& route(const std::string& name, int targets, BreakerConfig breaker = {}) {
        RouteConfig& rc = configs.emplace_back();
        rc.name = name;
        rc.strategy = "fallback";
        Route& r = routes.emplace_back();
        r.name = name;
        r.pattern = name;
        r.config = &rc;
        r.strategy = static_cast<int>(routing::Strategy::fallback);
        auto pauses = std::make_shared<routing::Pauses>();
        for (int i = 0; i < targets; ++i) {
            Target t;
            t.health = std::make_shared<routing::TargetHealth>(breaker, name + "/" + std::to_string(i));
            t.pauses = pauses;
            r.targets.push_back(std::move(t));
        }
        return r;
    }
    RetryConfig& retries(Route& r) { return const_cast<RouteConfig*>(r.config)->retries; }
};

AttemptFailure status_failure(int status, const char* code = "upstream_error") {
    AttemptFailure f;
    f.error = GatewayError::upstream_error("provider said " + std::to_string(status), code);
    f.error.status = status;
    f.kind = FailKind::status;
    f.status = status;
    return f;
}

/// The index of the step's target in its route.
std::ptrdiff_t target_index(const Step& s) {
    return s.target - s.route->targets.data();
}

TEST(Router, AFailedTargetIsRetriedAfterFullJitterBackoffThatGrowsPerRetry) {
    Fixture fx;
    Route& r = fx.route("m", 1);
    fx.retries(r).attempts = 3;
    fx.retries(r).backoff_base = 1000ms;
    fx.retries(r).backoff_cap = 1500ms;
    AttemptPlan plan(r, "m", fx.t0 + 60s, fx.rng);
    auto now = fx.t0;
    Step s = plan.next(now);
    ASSERT_EQ(s.kind, Step::attempt);
    EXPECT_FALSE(s.probe);
    Clock::duration max_wait{};
    for (int retry = 0; retry < 2; ++retry) {
        plan.failed(status_failure(500), now);
        s = plan.next(now);
        if (s.kind == Step::wait) {
            // Uniform in [0, min(cap, base * 2^retry)].
            EXPECT_GT(s.until, now);
            EXPECT_LE(s.until - now, retry == 0 ? Clock::duration(1000ms) : Clock::duration(1500ms));
            max_wait = std::max(max_wait, s.until - now);
            // Asking again before the wait is over still waits for the same target.
            now = s.until;
            s = plan.next(now);
        }
        ASSERT_EQ(s.kind, Step::attempt) << "retry " << retry;
        EXPECT_EQ(target_index(s), 0);
    }
    EXPECT_GT(max_wait, Clock::duration::zero()) << "the seeded jitter is not zero twice";
    plan.failed(status_failure(500), now);
    EXPECT_EQ(plan.next(now).kind, Step::exhausted) << "three attempts were allowed, three were made";
    const GatewayError e = plan.final_error(now);
    EXPECT_EQ(e.status, 500);
    EXPECT_EQ(e.message, "provider said 500");
}

TEST(Router, BackoffJitterCoversItsWholeRangeOverManyRequests) {
    Fixture fx;
    Route& r = fx.route("m", 1);
    fx.retries(r).backoff_base = 800ms;
    fx.retries(r).backoff_cap = 800ms;
    Clock::duration lo = 1h;
    Clock::duration hi{};
    for (int i = 0; i < 400; ++i) {
        AttemptPlan plan(r, "m", fx.t0 + 60s, fx.rng);
        ASSERT_EQ(plan.next(fx.t0).kind, Step::attempt);
        plan.failed(status_failure(503), fx.t0);
        const Step s = plan.next(fx.t0);
        const Clock::duration wait = s.kind == Step::wait ? s.until - fx.t0 : Clock::duration{};
        lo = std::min(lo, wait);
        hi = std::max(hi, wait);
    }
    EXPECT_LT(lo, Clock::duration(80ms));
    EXPECT_GT(hi, Clock::duration(720ms));
    EXPECT_LE(hi, Clock::duration(800ms));
}

TEST(Router, AnUntriedTargetComesBeforeARetryAndNeedsNoBackoff) {
    Fixture fx;
    Route& r = fx.route("m", 2);
    AttemptPlan plan(r, "m", fx.t0 + 60s, fx.rng);
    Step s = plan.next(fx.t0);
    ASSERT_EQ(s.kind, Step::attempt);
    EXPECT_EQ(target_index(s), 0);
    plan.failed(status_failure(502), fx.t0);
    s = plan.next(fx.t0);
    ASSERT_EQ(s.kind, Step::attempt) << "no wait before a different target";
    EXPECT_EQ(target_index(s), 1);
}

TEST(Router, NonRetryableStatusEndsThePlanWithThatError) {
    Fixture fx;
    Route& r = fx.route("m", 2);
    Route& other = fx.route("other", 1);
    r.fallbacks.push_back(&other);
    AttemptPlan plan(r, "m", fx.t0 + 60s, fx.rng);
    ASSERT_EQ(plan.next(fx.t0).kind, Step::attempt);
    AttemptFailure bad = status_failure(400, "invalid_request_error");
    bad.error.message = "Your request is wrong.";
    plan.failed(std::move(bad), fx.t0);
    EXPECT_EQ(plan.next(fx.t0).kind, Step::exhausted) << "a client error is not tried elsewhere";
    EXPECT_EQ(plan.final_error(fx.t0).status, 400);
    EXPECT_EQ(plan.final_error(fx.t0).message, "Your request is wrong.");
}

TEST(Router, RetryConditionsFollowTheFailureKind) {
    RetryConfig r;
    AttemptFailure f;
    f.kind = FailKind::connect;
    EXPECT_TRUE(retryable(r, f));
    f.kind = FailKind::timeout;
    EXPECT_TRUE(retryable(r, f));
    f.kind = FailKind::reset;
    EXPECT_FALSE(retryable(r, f)) << "off by default: the provider may have started generating";
    r.on_reset = true;
    EXPECT_TRUE(retryable(r, f));
    f.kind = FailKind::other;
    EXPECT_FALSE(retryable(r, f)) << "a cut body may have been billed";
    f.kind = FailKind::status;
    f.status = 529;
    EXPECT_TRUE(retryable(r, f));
    f.status = 501;
    EXPECT_FALSE(retryable(r, f));
}

TEST(Router, RetryAfterWithinTheCapIsWaitedForThenTheSameTargetIsTried) {
    Fixture fx;
    Route& r = fx.route("m", 1);
    AttemptPlan plan(r, "m", fx.t0 + 60s, fx.rng);
    ASSERT_EQ(plan.next(fx.t0).kind, Step::attempt);
    // What the attempt does with a 429 and retry-after-ms: 2000 (the forwarder's judge()).
    r.targets[0].pauses->pause("m", fx.t0 + 2s);
    AttemptFailure f = status_failure(429, "rate_limit_exceeded");
    f.retry_after = 2s;
    plan.failed(std::move(f), fx.t0);
    Step s = plan.next(fx.t0);
    ASSERT_EQ(s.kind, Step::wait);
    EXPECT_EQ(s.until, fx.t0 + 2s) << "exactly the pause; it replaces the backoff";
    s = plan.next(fx.t0 + 1s);
    ASSERT_EQ(s.kind, Step::wait) << "still paused";
    EXPECT_EQ(s.until, fx.t0 + 2s);
    s = plan.next(fx.t0 + 2s);
    ASSERT_EQ(s.kind, Step::attempt);
}

TEST(Router, RetryAfterOverTheCapSkipsTheTargetForTheRestOfTheRoute) {
    Fixture fx;
    Route& r = fx.route("m", 2);
    fx.retries(r).retry_after_cap = 5s;
    AttemptPlan plan(r, "m", fx.t0 + 60s, fx.rng);
    Step s = plan.next(fx.t0);
    ASSERT_EQ(target_index(s), 0);
    AttemptFailure f = status_failure(429, "rate_limit_exceeded");
    f.retry_after = 30s;  // not recorded as a pause here: the skip alone must move on
    plan.failed(std::move(f), fx.t0);
    s = plan.next(fx.t0);
    ASSERT_EQ(s.kind, Step::attempt) << "moves on without waiting";
    EXPECT_EQ(target_index(s), 1);
    plan.failed(status_failure(500), fx.t0);
    s = plan.next(fx.t0);
    // Target 0 is skipped; target 1 failed and is retried after its backoff.
    if (s.kind == Step::wait) {
        s = plan.next(s.until);
    }
    ASSERT_EQ(s.kind, Step::attempt);
    EXPECT_EQ(target_index(s), 1);
}

TEST(Router, OnlyProviderPausesInTheWayAnswer429WithTheShortestPause) {
    Fixture fx;
    Route& r = fx.route("m", 2);
    r.targets[0].pauses->pause("m", fx.t0 + 12s);  // both targets share the provider's pauses
    AttemptPlan plan(r, "m", fx.t0 + 60s, fx.rng);
    EXPECT_EQ(plan.next(fx.t0).kind, Step::exhausted) << "12 s is over the 5 s cap: no wait";
    const GatewayError e = plan.final_error(fx.t0 + 500ms);
    EXPECT_EQ(e.status, 429);
    EXPECT_EQ(e.code, "rate_limit_exceeded");
    EXPECT_EQ(e.retry_after, "12") << "11.5 s left, rounded up";
    // Another model behind the same provider is not paused.
    AttemptPlan other(r, "m-mini", fx.t0 + 60s, fx.rng);
    EXPECT_EQ(other.next(fx.t0).kind, Step::attempt);
}

TEST(Router, OpenCircuitsAnswer503WithRetryAfterThenOneRequestProbes) {
    Fixture fx;
    BreakerConfig b;
    b.consecutive_failures = 2;
    b.cooldown = 30000ms;
    Route& r = fx.route("m", 1, b);
    routing::TargetHealth& h = *r.targets[0].health;
    h.on_failure(fx.t0, false, {});
    h.on_failure(fx.t0, false, {});
    AttemptPlan plan(r, "m", fx.t0 + 600s, fx.rng);
    EXPECT_EQ(plan.next(fx.t0).kind, Step::exhausted) << "30 s cooldown is over the 5 s cap";
    const GatewayError e = plan.final_error(fx.t0);
    EXPECT_EQ(e.status, 503);
    EXPECT_EQ(e.code, "no_available_target");
    EXPECT_EQ(e.retry_after, "31");

    const auto later = fx.t0 + 30s;
    AttemptPlan first(r, "m", later + 600s, fx.rng);
    const Step probe = first.next(later);
    ASSERT_EQ(probe.kind, Step::attempt);
    EXPECT_TRUE(probe.probe) << "half-open: this request is the probe";
    AttemptPlan second(r, "m", later + 600s, fx.rng);
    EXPECT_EQ(second.next(later).kind, Step::exhausted) << "one probe at a time";
    h.on_success(later, true);
    AttemptPlan third(r, "m", later + 600s, fx.rng);
    const Step closed = third.next(later);
    ASSERT_EQ(closed.kind, Step::attempt);
    EXPECT_FALSE(closed.probe) << "the probe's success closed the circuit";
}

TEST(Router, ACircuitBackWithinTheCapIsWaitedFor) {
    Fixture fx;
    BreakerConfig b;
    b.consecutive_failures = 1;
    b.cooldown = 3000ms;
    Route& r = fx.route("m", 1, b);
    r.targets[0].health->on_failure(fx.t0, false, {});
    AttemptPlan plan(r, "m", fx.t0 + 60s, fx.rng);
    const Step s = plan.next(fx.t0);
    ASSERT_EQ(s.kind, Step::wait);
    EXPECT_EQ(s.until, fx.t0 + 3s);
    const Step probe = plan.next(s.until);
    ASSERT_EQ(probe.kind, Step::attempt);
    EXPECT_TRUE(probe.probe);
}

TEST(Router, TheTotalDeadlineEndsRetriesAndSaysSo) {
    Fixture fx;
    Route& r = fx.route("m", 1);
    const_cast<RouteConfig*>(r.config)->total_timeout = 2000ms;
    AttemptPlan plan(r, "m", fx.t0 + 2s, fx.rng);
    ASSERT_EQ(plan.next(fx.t0).kind, Step::attempt);
    plan.failed(status_failure(503), fx.t0 + 2s);
    EXPECT_EQ(plan.next(fx.t0 + 2s).kind, Step::exhausted);
    const GatewayError e = plan.final_error(fx.t0 + 2s);
    EXPECT_EQ(e.status, 503);
    EXPECT_EQ(e.message, "provider said 503 (retries ended by the route's total deadline of 2000 ms)");

    AttemptPlan late(r, "m", fx.t0 + 2s, fx.rng);
    EXPECT_EQ(late.next(fx.t0 + 3s).kind, Step::exhausted);
    const GatewayError none = late.final_error(fx.t0 + 3s);
    EXPECT_EQ(none.status, 504);
    EXPECT_EQ(none.message, "The route's total deadline passed before any provider could be tried.");
}

TEST(Router, ABackoffThatWouldEndPastTheDeadlineEndsThePlanAtOnce) {
    Fixture fx;
    Route& r = fx.route("m", 1);
    fx.retries(r).backoff_base = 10000ms;
    fx.retries(r).backoff_cap = 10000ms;
    int ended = 0;
    for (int i = 0; i < 50; ++i) {
        AttemptPlan plan(r, "m", fx.t0 + 1s, fx.rng);
        ASSERT_EQ(plan.next(fx.t0).kind, Step::attempt);
        plan.failed(status_failure(500), fx.t0);
        const Step s = plan.next(fx.t0);
        if (s.kind == Step::exhausted) {
            ++ended;
        } else if (s.kind == Step::wait) {
            EXPECT_LT(s.until, fx.t0 + 1s) << "never a wait that outlives the deadline";
        }
    }
    EXPECT_GT(ended, 35) << "about 90% of 10 s jitters end past a 1 s deadline";
}

TEST(Router, AttemptsAreBoundedPerRoute) {
    Fixture fx;
    Route& r = fx.route("m", 3);
    fx.retries(r).attempts = 2;
    AttemptPlan plan(r, "m", fx.t0 + 60s, fx.rng);
    int attempts = 0;
    auto now = fx.t0;
    for (Step s = plan.next(now); s.kind != Step::exhausted; s = plan.next(now)) {
        if (s.kind == Step::wait) {
            now = s.until;
            continue;
        }
        ++attempts;
        plan.failed(status_failure(500), now);
    }
    EXPECT_EQ(attempts, 2);
}

TEST(Router, ContextLengthErrorsGoToTheirClassRouteBeforeTheGenericFallbacks) {
    Fixture fx;
    Route& r = fx.route("m", 1);
    Route& longer = fx.route("long", 1);
    Route& generic = fx.route("generic", 1);
    r.on_context_length.push_back(&longer);
    r.fallbacks.push_back(&generic);
    AttemptPlan plan(r, "m", fx.t0 + 60s, fx.rng);
    ASSERT_EQ(plan.next(fx.t0).kind, Step::attempt);
    AttemptFailure f = status_failure(400, "context_length_exceeded");
    plan.failed(std::move(f), fx.t0);
    Step s = plan.next(fx.t0);
    ASSERT_EQ(s.kind, Step::attempt);
    EXPECT_EQ(s.route, &longer);
    plan.failed(status_failure(400, "invalid_request_error"), fx.t0);
    EXPECT_EQ(plan.next(fx.t0).kind, Step::exhausted) << "the class route replaced the generic fallbacks";
}

TEST(Router, GenericFallbacksAreTriedWhenARouteIsExhaustedAndEachRouteOnce) {
    Fixture fx;
    Route& a = fx.route("a", 1);
    Route& b = fx.route("b", 1);
    fx.retries(a).attempts = 1;
    fx.retries(b).attempts = 1;
    a.fallbacks.push_back(&b);
    b.fallbacks.push_back(&a);  // a cycle
    AttemptPlan plan(a, "m", fx.t0 + 60s, fx.rng);
    std::vector<const Route*> order;
    for (Step s = plan.next(fx.t0); s.kind == Step::attempt; s = plan.next(fx.t0)) {
        order.push_back(s.route);
        plan.failed(status_failure(503), fx.t0);
    }
    EXPECT_EQ(order, (std::vector<const Route*>{&a, &b}));
}

TEST(Router, AnAccountOutOfQuotaIsFinalEvenWithFallbacks) {
    Fixture fx;
    Route& a = fx.route("a", 2);
    Route& b = fx.route("b", 1);
    a.fallbacks.push_back(&b);
    AttemptPlan plan(a, "m", fx.t0 + 60s, fx.rng);
    ASSERT_EQ(plan.next(fx.t0).kind, Step::attempt);
    AttemptFailure f = status_failure(429, "insufficient_quota");
    f.final = true;
    plan.failed(std::move(f), fx.t0);
    EXPECT_EQ(plan.next(fx.t0).kind, Step::exhausted);
    EXPECT_EQ(plan.final_error(fx.t0).code, "insufficient_quota");
}

}  // namespace
}  // namespace sluice::proxy
