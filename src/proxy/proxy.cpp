#include "proxy/proxy.hpp"

#include <random>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>

#include "proxy/attempt.hpp"
#include "proxy/models.hpp"
#include "proxy/router.hpp"
#include "server/client_writer.hpp"
#include "server/server.hpp"

namespace sluice::proxy {

namespace {

routing::Rng& worker_rng() {
    thread_local routing::Rng rng{std::random_device{}()};
    return rng;
}

/// Sleeps between attempts. false when the client left or the server is draining meanwhile.
net::awaitable<bool> pause(ClientLink& link, RequestContext& ctx, Clock::duration d) {
    if (d > Clock::duration::zero()) {
        const auto began = Clock::now();
        net::steady_timer timer(link.worker.io(), d);
        link.retry_timer = &timer;  // the client leaving (or the drain deadline) ends the wait
        co_await timer.async_wait(use_nothrow);
        link.retry_timer = nullptr;
        ctx.retry_wait += Clock::now() - began;
    }
    co_return !link.gone && !link.drain_abort;
}

/// Routes the request: attempts as the router plans them, until one answers, the client
/// leaves, or the plan is exhausted (then its final error is the answer).
net::awaitable<void> forward(ClientLink& link, RequestContext& ctx) {
    const Route& primary = *ctx.route;
    AttemptPlan plan(primary, ctx.api.model, ctx.started + primary.config->total_timeout, worker_rng());
    for (Step step = plan.next(Clock::now()); step.kind != Step::exhausted; step = plan.next(Clock::now())) {
        if (step.kind == Step::wait) {
            if (!co_await pause(link, ctx, step.until - Clock::now())) {
                if (!link.gone) {  // the drain deadline passed during the wait
                    const auto e = GatewayError::draining();
                    link.close = true;
                    co_await send_error(link, ctx, e);
                }
                co_return;
            }
            continue;
        }
        ctx.error_code.clear();
        ctx.usage = Usage{};
        AttemptResult result;
        {
            AttemptGuard guard(
                *step.target->health, step.probe,
                static_cast<routing::Strategy>(step.route->strategy) == routing::Strategy::least_latency);
            const auto attempt_began = Clock::now();
            result = co_await run_attempt(link, ctx, *step.route, *step.target, plan.deadline(), guard);
            ctx.attempts.back().duration = Clock::now() - attempt_began;
            ctx.attempts.back().usage = ctx.usage;
        }
        if (result.kind != AttemptResult::Kind::failed) {
            co_return;  // answered, or the client left
        }
        AttemptFailure& failure = *result.failure;
        ctx.attempts.back().error =
            failure.error.code.empty() ? std::to_string(failure.status) : failure.error.code;
        if (link.gone) {
            co_return;
        }
        plan.failed(std::move(failure), Clock::now());
    }
    const GatewayError e = plan.final_error(Clock::now());
    co_await send_error(link, ctx, e);
}

class Proxy final : public RequestHandler {
public:
    net::awaitable<void> handle(std::shared_ptr<ClientLink> link, RequestContext& ctx,
                                std::string_view model_id) const override {
        const RequestVerdict verdict = co_await ctx.runtime.filters().on_request(ctx);
        if (verdict.kind == RequestVerdict::Kind::reject) {
            ctx.served = true;
            co_await send_error(*link, ctx, verdict.error);
        } else if (verdict.kind == RequestVerdict::Kind::serve) {
            ctx.served = true;
            co_await send_served(*link, ctx, verdict.served);
        } else if (ctx.endpoint == Endpoint::models) {
            co_await list_models(link->worker, *link, ctx, model_id);
        } else {
            co_await forward(*link, ctx);
        }
    }

    void start_worker(Worker& worker) const override {
        if (worker.index() != 0) {
            return;
        }
        const auto rt = worker.runtime();
        for (const auto& p : rt->providers()) {
            if (rt->provider_up(p.get())) {
                net::co_spawn(worker.io(), health_loop(worker, p.get()), net::detached);
            }
        }
    }
};

}  // namespace

std::shared_ptr<const RequestHandler> make_request_handler() {
    return std::make_shared<Proxy>();
}

}  // namespace sluice::proxy
