#pragma once

// The router: turns a request's route chain into a plan of attempts. It does no I/O and reads
// no clock: every decision takes `now` from the caller, so retries, backoff, Retry-After pauses,
// breakers and error-class fallbacks are unit-tested on a fake clock (tests/unit/pipeline/).
//
//   AttemptPlan plan(route, model, deadline, rng);
//   for (auto step = plan.next(now); step.kind != Step::exhausted; step = plan.next(now)) {
//       wait:    sleep until step.until, then ask again
//       attempt: run it on step.target; on failure plan.failed(f, now); on success stop
//   }
//   plan.final_error(now)  // what the client gets when the plan ran out

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/container/small_vector.hpp>

#include <sluice/request_context.hpp>

#include "proxy/outcome.hpp"
#include "routing/select.hpp"

namespace sluice::proxy {

/// What the caller does next.
struct Step {
    enum Kind {
        attempt,
        wait,
        exhausted
    };
    Kind kind = exhausted;
    const Route* route = nullptr;    ///< attempt: the route the target belongs to
    const Target* target = nullptr;  ///< attempt
    bool probe = false;              ///< attempt: this request is the half-open probe
    Clock::time_point until{};       ///< wait: ask again at (or after) this time
};

/// Per route of the chain, within this request.
struct RouteState {
    const Route* route = nullptr;
    boost::container::small_vector<char, 8> tried;    ///< failed here already
    boost::container::small_vector<char, 8> skipped;  ///< paused longer than retry_after_cap
    unsigned used = 0;                                ///< attempts made on this route
    unsigned retries = 0;                             ///< of which on a target tried before
    Clock::time_point last_failure_at{};              ///< {} = no backoff owed
    std::optional<std::size_t> chosen;                ///< picked, waiting out its backoff
    std::size_t current = 0;                          ///< target of the running attempt
};

class AttemptPlan {
public:
    static constexpr std::size_t kMaxRoutes = 16;  ///< bounds a chain of fallback routes

    AttemptPlan(const Route& primary, std::string_view client_model, Clock::time_point total_deadline,
                routing::Rng& rng);

    /// The next step at `now`. An attempt step has claimed its target (breaker admit): the
    /// caller must give the breaker its verdict or release the probe.
    Step next(Clock::time_point now);
    /// The attempt of the last step failed without answering the client, at `now`.
    void failed(AttemptFailure f, Clock::time_point now);
    /// The answer for the client once next() said exhausted.
    GatewayError final_error(Clock::time_point now) const;

    const Route& primary() const noexcept { return primary_; }
    Clock::time_point deadline() const noexcept { return deadline_; }

private:
    bool enter_next_route();
    void leave_route(const std::vector<const Route*>* by_class);
    Clock::time_point paused_until(const Target& t, Clock::time_point now) const;
    /// Fills candidates_; empty when every target is open, paused or skipped.
    void collect_candidates(Clock::time_point now);
    /// With no candidate: the wait for the first target back, or nullopt when the route is done.
    std::optional<Clock::time_point> wait_for_a_target(Clock::time_point now);
    std::optional<Step> claim(std::size_t index, Clock::time_point now);

    const Route& primary_;
    std::string_view model_;
    Clock::time_point deadline_;
    routing::Rng& rng_;

    boost::container::small_vector<const Route*, 4> pending_;
    std::size_t next_route_ = 0;
    boost::container::small_vector<const Route*, 4> visited_;
    std::optional<RouteState> route_;
    boost::container::small_vector<routing::Candidate, 8> candidates_;

    std::optional<AttemptFailure> last_;
    bool final_answer_ = false;  ///< `last_` must not be retried anywhere
    bool deadline_hit_ = false;
    /// Why no attempt could be made: a provider's Retry-After pause for the model (the client
    /// gets a 429) or an open circuit (503).
    Clock::time_point earliest_back_ = Clock::time_point::max();
    Clock::time_point earliest_unpaused_ = Clock::time_point::max();
    bool unavailable_otherwise_ = false;
};

/// Whether the route's retry policy retries this failure.
bool retryable(const RetryConfig& r, const AttemptFailure& f);

}  // namespace sluice::proxy
