#pragma once

// Outside the request path: the /models endpoint (routes and what glob routes' providers list)
// and the active health checks, both built on the upstream exchange.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <sluice/provider.hpp>

#include "server/server.hpp"

namespace sluice::proxy {

/// One active health check: the provider's model list answers 2xx within `timeout`. `rt` is
/// the snapshot `provider` belongs to (it holds the provider's TLS context).
net::awaitable<bool> check_provider(Worker& worker, const Runtime& rt, const Provider& provider,
                                    std::chrono::milliseconds timeout);

/// Model ids a provider offers (cached for a minute per runtime), fetched with its key, on the
/// snapshot `rt` that `provider` belongs to.
net::awaitable<std::vector<std::string>> provider_models(Worker& worker, const Runtime& rt,
                                                         const Provider& provider, std::string request_id);

/// GET /models (every routed model the key may use) and GET /models/{id} (`only`).
net::awaitable<void> list_models(Worker& worker, ClientLink& link, RequestContext& ctx,
                                 std::string_view only);

/// The active health checks of one provider, on the worker that runs them (worker 0), until
/// the drain begins. Uses the snapshot the worker had when it started.
net::awaitable<void> health_loop(Worker& worker, const Provider* provider);

}  // namespace sluice::proxy
