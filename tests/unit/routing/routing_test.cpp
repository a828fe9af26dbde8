// Routing decisions without I/O: strategies, backoff, Retry-After, error classes, breakers.
#include <gtest/gtest.h>

#include <array>
#include <ctime>
#include <vector>

#include <sluice/error.hpp>

#include "routing/health.hpp"
#include "routing/pauses.hpp"
#include "routing/select.hpp"

namespace sluice::routing {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

std::vector<Candidate> weighted(std::initializer_list<unsigned> weights) {
    std::vector<Candidate> c;
    std::size_t i = 0;
    for (const unsigned w : weights) {
        Candidate x;
        x.index = i++;
        x.weight = w;
        c.push_back(x);
    }
    return c;
}

TEST(Picker, WeightedDrawsFollowTheWeightsWithinTwoPercent) {
    Rng rng(12345);
    const auto c = weighted({1, 3, 6});
    std::array<int, 3> counts{};
    constexpr int kDraws = 10000;
    for (int i = 0; i < kDraws; ++i) {
        counts[choose(Strategy::weighted, c, rng, {})]++;
    }
    const std::array<double, 3> expected{0.1, 0.3, 0.6};
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_NEAR(counts[i] / static_cast<double>(kDraws), expected[i], 0.02) << "target " << i;
    }
}

TEST(Picker, FallbackTakesTheFirstAvailableInOrder) {
    Rng rng(1);
    auto c = weighted({1, 100});
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(choose(Strategy::fallback, c, rng, {}), 0u);
    }
}

TEST(Picker, LeastBusyTakesTheFewestInFlightPerWeight) {
    Rng rng(2);
    auto c = weighted({1, 1, 2});
    c[0].in_flight = 3;
    c[1].in_flight = 1;
    c[2].in_flight = 3;  // 1.5 per unit of weight
    EXPECT_EQ(choose(Strategy::least_busy, c, rng, {}), 1u);
    c[1].in_flight = 5;
    EXPECT_EQ(choose(Strategy::least_busy, c, rng, {}), 2u);
}

TEST(Picker, LeastLatencyPrefersTheFasterAndSharesWithinTheBand) {
    Rng rng(3);
    auto c = weighted({1, 1});
    c[0].score = 900;
    c[1].score = 100;
    ChooseOptions o;
    o.band = 0.2;
    o.explore = 0.0;
    for (int i = 0; i < 1000; ++i) {
        ASSERT_EQ(choose(Strategy::least_latency, c, rng, o), 1u);
    }
    // Near-equal targets (within 20%) share the traffic.
    c[0].score = 110;
    std::array<int, 2> counts{};
    for (int i = 0; i < 2000; ++i) {
        counts[choose(Strategy::least_latency, c, rng, o)]++;
    }
    EXPECT_GT(counts[0], 800);
    EXPECT_GT(counts[1], 800);
    // Exploration sends a small share to the slow target so it is measured again.
    c[0].score = 900;
    o.explore = 0.1;
    counts = {};
    for (int i = 0; i < 10000; ++i) {
        counts[choose(Strategy::least_latency, c, rng, o)]++;
    }
    EXPECT_NEAR(counts[0] / 10000.0, 0.05, 0.015);
}

TEST(Picker, LeastLatencyTriesUnmeasuredTargetsFirst) {
    Rng rng(4);
    auto c = weighted({1, 1});
    c[0].score = 10;
    c[1].score = -1;
    EXPECT_EQ(choose(Strategy::least_latency, c, rng, {}), 1u);
}

TEST(Backoff, ExponentialWithFullJitterAndCap) {
    RetryConfig r;
    r.backoff_base = milliseconds(100);
    r.backoff_cap = milliseconds(1000);
    Rng rng(5);
    for (unsigned retry = 0; retry < 8; ++retry) {
        const long ceiling = std::min(1000L, 100L << retry);
        long lo = ceiling;
        long hi = 0;
        for (int i = 0; i < 2000; ++i) {
            const long d = backoff_delay(r, retry, rng).count();
            ASSERT_GE(d, 0);
            ASSERT_LE(d, ceiling);
            lo = std::min(lo, d);
            hi = std::max(hi, d);
        }
        // Full jitter: the whole range [0, ceiling] is used.
        EXPECT_LT(lo, ceiling / 10 + 1) << retry;
        EXPECT_GT(hi, ceiling * 9 / 10) << retry;
    }
    r.backoff_base = milliseconds(0);
    EXPECT_EQ(backoff_delay(r, 3, rng).count(), 0);
}

TEST(RetryAfter, MillisecondHeadersWinOverRetryAfter) {
    EXPECT_EQ(parse_retry_after("300", "", "7", 0), milliseconds(300));
    EXPECT_EQ(parse_retry_after("", "1500.5", "7", 0), milliseconds(1501));
    EXPECT_EQ(parse_retry_after("", "", "7", 0), milliseconds(7000));
    EXPECT_EQ(parse_retry_after("", "", "1.5", 0), milliseconds(1500));
    EXPECT_EQ(parse_retry_after("junk", "", "2", 0), milliseconds(2000));
    EXPECT_FALSE(parse_retry_after("", "", "", 0));
    EXPECT_FALSE(parse_retry_after("", "", "soon", 0));
    EXPECT_FALSE(parse_retry_after("-5", "", "-1", 0));
}

TEST(RetryAfter, HttpDatesInAllThreeFormats) {
    // Sun, 06 Nov 1994 08:49:37 GMT = 784111777
    const std::int64_t now = 784111777 - 30;
    EXPECT_EQ(parse_retry_after("", "", "Sun, 06 Nov 1994 08:49:37 GMT", now), milliseconds(30000));
    EXPECT_EQ(parse_retry_after("", "", "Sunday, 06-Nov-94 08:49:37 GMT", now), milliseconds(30000));
    EXPECT_EQ(parse_retry_after("", "", "Sun Nov  6 08:49:37 1994", now), milliseconds(30000));
    // A date in the past means now.
    EXPECT_EQ(parse_retry_after("", "", "Sun, 06 Nov 1994 08:49:37 GMT", now + 100), milliseconds(0));
}

GatewayError upstream(int status, std::string code, std::string message) {
    GatewayError e;
    e.status = status;
    e.code = std::move(code);
    e.message = std::move(message);
    return e;
}

TEST(ErrorClass, RecognisesEveryProvidersContextLengthAndPolicyErrors) {
    EXPECT_EQ(classify(upstream(400, "context_length_exceeded", "x")), ErrorClass::context_length_exceeded);
    EXPECT_EQ(classify(upstream(400, "invalid_request_error",
                                "prompt is too long: 210000 tokens > 200000 maximum")),
              ErrorClass::context_length_exceeded);
    EXPECT_EQ(classify(upstream(
                  400, "",
                  "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).")),
              ErrorClass::context_length_exceeded);
    EXPECT_EQ(classify(upstream(400, "", "This model's maximum context length is 4096 tokens.")),
              ErrorClass::context_length_exceeded);
    EXPECT_EQ(classify(upstream(400, "ValidationException", "Input is too long for requested model.")),
              ErrorClass::context_length_exceeded);
    EXPECT_EQ(classify(upstream(400, "content_filter", "filtered")), ErrorClass::content_policy);
    EXPECT_EQ(classify(upstream(400, "",
                                "The response was filtered due to the prompt triggering Azure OpenAI's "
                                "content management policy.")),
              ErrorClass::content_policy);
    EXPECT_EQ(classify(upstream(400, "content_policy_violation", "x")), ErrorClass::content_policy);
    EXPECT_EQ(classify(upstream(400, "invalid_request_error", "temperature must be below 2")),
              ErrorClass::none);
    EXPECT_EQ(classify(upstream(500, "", "context length trouble")), ErrorClass::none);
}

BreakerConfig breaker(unsigned consecutive, double ratio = 0.0) {
    BreakerConfig b;
    b.consecutive_failures = consecutive;
    b.error_ratio = ratio;
    b.min_requests = 10;
    b.window = milliseconds(10000);
    b.cooldown = milliseconds(1000);
    return b;
}

const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(1000);

TEST(Breaker, OpensAfterConsecutiveFailuresAndSuccessResetsTheCount) {
    TargetHealth h(breaker(3), "t");
    h.on_failure(t0, false, {});
    h.on_failure(t0, false, {});
    h.on_success(t0, false);  // the run is broken
    h.on_failure(t0, false, {});
    h.on_failure(t0, false, {});
    EXPECT_EQ(h.admit(t0), Admit::yes);
    h.on_failure(t0, false, {});
    EXPECT_EQ(h.state(t0), BreakerState::open);
    EXPECT_EQ(h.admit(t0 + 999ms), Admit::no);
    EXPECT_FALSE(h.available(t0 + 999ms));
    EXPECT_EQ(h.available_at(t0), t0 + 1000ms);
}

TEST(Breaker, HalfOpenLetsExactlyOneProbeThrough) {
    TargetHealth h(breaker(1), "t");
    h.on_failure(t0, false, {});
    const auto later = t0 + 1000ms;
    EXPECT_EQ(h.state(later), BreakerState::half_open);
    EXPECT_EQ(h.admit(later), Admit::probe);
    EXPECT_EQ(h.admit(later), Admit::no);  // only one probe at a time
    EXPECT_FALSE(h.available(later));
    h.on_success(later, true);
    EXPECT_EQ(h.state(later), BreakerState::closed);
    EXPECT_EQ(h.admit(later), Admit::yes);
}

TEST(Breaker, FailedProbeReopensForAnotherCooldown) {
    TargetHealth h(breaker(1), "t");
    h.on_failure(t0, false, {});
    const auto later = t0 + 1500ms;
    ASSERT_EQ(h.admit(later), Admit::probe);
    h.on_failure(later, true, {});
    EXPECT_EQ(h.admit(later + 999ms), Admit::no);
    EXPECT_EQ(h.admit(later + 1000ms), Admit::probe);
}

TEST(Breaker, ReleasedProbeLetsTheNextRequestProbe) {
    TargetHealth h(breaker(1), "t");
    h.on_failure(t0, false, {});
    ASSERT_EQ(h.admit(t0 + 1s), Admit::probe);
    h.release_probe();
    EXPECT_EQ(h.admit(t0 + 1s), Admit::probe);
}

TEST(Breaker, CooldownIsAtLeastTheProvidersRetryAfterAndNeverShortened) {
    TargetHealth h(breaker(1), "t");
    h.on_failure(t0, false, 5s);
    EXPECT_EQ(h.available_at(t0), t0 + 5s);
    // A later, shorter Retry-After does not shorten the pause.
    h.on_failure(t0 + 1s, false, 1s);
    EXPECT_EQ(h.available_at(t0), t0 + 5s);
}

TEST(Breaker, RetryAfterAloneNeitherOpensNorBlocksAClosedTarget) {
    // The pause belongs to the (provider, model) pair: routing::Pauses, not the breaker.
    TargetHealth h(breaker(5), "t");
    h.on_failure(t0, false, 300ms);
    EXPECT_EQ(h.state(t0), BreakerState::closed);
    EXPECT_EQ(h.admit(t0 + 1ms), Admit::yes);
}

TEST(Pauses, ApplyToTheModelThatWasPausedOnly) {
    Pauses p;
    EXPECT_LE(p.paused_until("a", t0), t0);
    p.pause("a", t0 + 7s);
    EXPECT_EQ(p.paused_until("a", t0), t0 + 7s);
    EXPECT_LE(p.paused_until("b", t0), t0);
    // A shorter, later Retry-After does not shorten the pause; a longer one lengthens it.
    p.pause("a", t0 + 2s);
    EXPECT_EQ(p.paused_until("a", t0), t0 + 7s);
    p.pause("a", t0 + 9s);
    EXPECT_EQ(p.paused_until("a", t0), t0 + 9s);
    EXPECT_LE(p.paused_until("a", t0 + 9s), t0 + 9s);
}

TEST(Pauses, TableIsBoundedWhateverModelNamesClientsSend) {
    Pauses p(100);
    for (int i = 0; i < 1000; ++i) {
        std::string model = "m";  // (not "m" + ...: g++ 12 warns falsely on that, -Wrestrict)
        model += std::to_string(i);
        p.pause(model, t0 + 1h);
    }
    EXPECT_LE(p.size(), 100u);
    EXPECT_EQ(p.paused_until("m999", t0), t0 + 1h);  // the newest pause is kept
}

TEST(Breaker, OpensOnTheErrorRatioOverTheWindow) {
    TargetHealth h(breaker(0, 0.5), "t");
    for (int i = 0; i < 4; ++i) {
        h.on_success(t0, false);
        h.on_failure(t0, false, {});  // alternating: never 2 in a row, ratio 50%
    }
    EXPECT_EQ(h.state(t0), BreakerState::closed);  // 8 requests, below min_requests
    h.on_success(t0, false);
    h.on_failure(t0, false, {});
    EXPECT_EQ(h.state(t0), BreakerState::open);
}

TEST(Breaker, OldFailuresLeaveTheWindow) {
    TargetHealth h(breaker(0, 0.5), "t");
    for (int i = 0; i < 9; ++i) {
        h.on_failure(t0, false, {});
    }
    // Eleven seconds later the failures are outside the 10 s window.
    const auto later = t0 + 11s;
    for (int i = 0; i < 9; ++i) {
        h.on_success(later, false);
    }
    h.on_failure(later, false, {});
    EXPECT_EQ(h.state(later), BreakerState::closed);
}

TEST(Breaker, DisabledNeverOpensNorPauses) {
    BreakerConfig b = breaker(1);
    b.enabled = false;
    TargetHealth h(b, "t");
    for (int i = 0; i < 100; ++i) {
        h.on_failure(t0, false, 10s);
    }
    EXPECT_EQ(h.admit(t0), Admit::yes);
}

TEST(Latency, ScoreIsAnEwmaOfTimeToFirstTokenAndPerToken) {
    TargetHealth h(breaker(5), "t");
    EXPECT_LT(h.latency_score(), 0);
    h.observe(100, 1);
    EXPECT_DOUBLE_EQ(h.latency_score(), 100 + 1 * 100);
    h.observe(200, -1);  // a non-stream answer: no per-token sample
    EXPECT_DOUBLE_EQ(h.latency_score(), 120 + 100);
}

}  // namespace
}  // namespace sluice::routing
