#pragma once

// One attempt: build the upstream request for the chosen target, run the exchange (or the
// in-process provider), and classify what happened as a typed AttemptResult: answered, the
// client left, or failed with nothing sent (the router decides what comes next).

#include <sluice/request_context.hpp>

#include "proxy/attempt_guard.hpp"
#include "proxy/outcome.hpp"
#include "server/server.hpp"

namespace sluice::proxy {

net::awaitable<AttemptResult> run_attempt(ClientLink& link, RequestContext& ctx, const Route& route,
                                          const Target& target, Clock::time_point total_deadline,
                                          AttemptGuard& guard);

}  // namespace sluice::proxy
