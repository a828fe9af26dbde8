#include "proxy/attempt.hpp"

#include <sluice/clock.hpp>

#include <algorithm>

#include "json/json_dom.hpp"
#include "json/json_reader.hpp"
#include "log/log.hpp"
#include "proxy/ingress.hpp"
#include "proxy/stream_relay.hpp"
#include "proxy/upstream_exchange.hpp"
#include "routing/pauses.hpp"
#include "server/client_writer.hpp"
#include "util/strings.hpp"

namespace sluice::proxy {

namespace {

constexpr std::size_t kMaxErrorBody = 256 * 1024;

AttemptFailure make_failure(GatewayError e, FailKind kind = FailKind::other, int status = 0) {
    AttemptFailure f;
    f.error = std::move(e);
    f.kind = kind;
    f.status = status;
    return f;
}

/// The body filters over a non-stream answer (in the client's dialect); a refusal is the
/// gateway's own verdict: final, and saying nothing about the target.
std::optional<AttemptFailure> filter_body(RequestContext& ctx, std::string& body, int status) {
    auto refused = ctx.runtime.filters().on_response_body(ctx, body);
    if (!refused) {
        return std::nullopt;
    }
    AttemptFailure f = make_failure(std::move(*refused), FailKind::other, status);
    f.final = true;
    f.gateway_verdict = true;
    return f;
}

/// Answered, unless the client left while it was being answered.
AttemptResult answered(const ClientLink& link) {
    return link.gone ? AttemptResult::client_gone() : AttemptResult::answered();
}

Clock::duration choose_timeout(const std::optional<Duration>& target, const std::optional<Duration>& route,
                               Clock::duration provider) {
    if (target) {
        return *target;
    }
    if (route) {
        return *route;
    }
    return provider;
}

AttemptTimeouts effective_timeouts(const Route& route, const Target& target) {
    AttemptTimeouts t = provider_timeouts(target.provider->settings());
    const TimeoutOverrides& r = route.config->timeouts;
    const TimeoutOverrides& o = target.timeouts;
    t.connect = choose_timeout(o.connect, r.connect, t.connect);
    t.first_byte = choose_timeout(o.first_byte, r.first_byte, t.first_byte);
    t.first_token = choose_timeout(o.first_token, r.first_token, t.first_token);
    t.idle = choose_timeout(o.idle, r.idle, t.idle);
    return t;
}

/// A 429 that says the account is out of money or quota: no wait makes it succeed.
bool out_of_quota(const GatewayError& e) {
    return e.code == "insufficient_quota" || e.type == "insufficient_quota";
}

/// Judges a failed attempt for the breaker and the provider's pauses. A 429 is rate limiting,
/// not ill health: it never counts toward opening the circuit (as Envoy's outlier detection
/// counts gateway errors, not 429s); its Retry-After pauses only the (provider, upstream model)
/// pair that answered it. 5xx, timeouts and connection errors still count.
void judge(const Target& target, std::string_view upstream_model, AttemptGuard& guard, AttemptFailure& f) {
    if (f.error.status == 429 || f.status == 429) {
        guard.neutral();
        if (out_of_quota(f.error)) {
            f.final = true;
        } else if (f.retry_after && *f.retry_after > Clock::duration::zero() && target.pauses) {
            target.pauses->pause(upstream_model, Clock::now() + *f.retry_after);
        }
        return;
    }
    guard.failure(Clock::duration::zero());
}

/// A 2xx non-stream answer in the client's shape: the provider's translation, then the front
/// door's (a Messages answer for /v1/messages through a chat provider). Reads the usage into the
/// context and what else the provider saw into `answer`.
std::optional<GatewayError> translate_answer(RequestContext& ctx, const Provider& provider,
                                             const ProviderRequest& preq, std::string& body, Answer& answer) {
    auto err =
        provider.translate_response(*preq.api, body, unix_seconds(std::chrono::system_clock::now()), answer);
    ctx.usage = answer.usage;
    if (err) {
        return err;
    }
    return egress(ctx, provider, preq, body, ctx.usage);
}

/// The in-process provider (kind: mock): its answer goes through the same relay code.
net::awaitable<AttemptResult> answer_local(ClientLink& link, RequestContext& ctx, const Provider& provider,
                                           const ProviderRequest& preq, const UpstreamRequest& req,
                                           AttemptGuard& guard) {
    const auto began = Clock::now();
    LocalResponse resp = provider.respond_locally(req);
    ctx.upstream_time += Clock::now() - began;
    ctx.runtime.filters().on_upstream_response(ctx, UpstreamResponseHead(provider, resp.status, nullptr));
    if (resp.status >= 400) {
        if (resp.status == 429) {
            guard.neutral();  // rate limiting is not ill health
        } else if (resp.status >= 500) {
            guard.failure(Clock::duration::zero());
        } else {
            guard.success();
        }
        co_return AttemptResult::failed(
            make_failure(provider.translate_error(resp.status, NoHeaders(), resp.body, 0).error,
                         FailKind::status, resp.status));
    }
    if (ctx.api.stream) {
        const auto deadline = Clock::now() + std::chrono::hours(1);
        const AttemptTimeouts t = provider_timeouts(provider.settings());
        StreamSource source;
        source.local_body = resp.body;
        source.request = preq.api;
        RelayResult r = co_await relay_stream(link, ctx, provider, source, deadline, t, &guard, began);
        if (r.uncommitted) {
            co_return AttemptResult::failed(std::move(*r.uncommitted));
        }
        co_return answered(link);
    }
    Answer answer;
    if (auto err = translate_answer(ctx, provider, preq, resp.body, answer)) {
        guard.failure(Clock::duration::zero());
        co_return AttemptResult::failed(make_failure(std::move(*err)));
    }
    guard.success();
    if (auto refused = filter_body(ctx, resp.body, resp.status)) {
        co_return AttemptResult::failed(std::move(*refused));
    }
    co_await send_body(link, ctx, 200, resp.content_type, resp.body);
    co_return answered(link);
}

/// The exchange stopped before an answer (no connection, timeout, reset, invalid head).
AttemptResult exchange_failed(const RequestContext& ctx, ExchangeError err, AttemptGuard& guard) {
    if (err.kind == FailKind::client_gone) {
        return AttemptResult::client_gone();
    }
    log::warn("request {}: {}", ctx.request_id, err.error.message);
    if (err.error.code == "overloaded" || err.error.code == "draining" || err.error.status < 500) {
        guard.neutral();  // our own limit or a refused request, not the target's health
    } else {
        guard.failure(Clock::duration::zero());
    }
    return AttemptResult::failed(make_failure(std::move(err.error), err.kind));
}

/// Redirects are never followed (credentials must not go to another host) nor passed on.
AttemptResult redirected(const RequestContext& ctx, const Provider& provider, int status,
                         AttemptGuard& guard) {
    log::warn("request {}: provider '{}' answered HTTP {} (redirect): check its base_url", ctx.request_id,
              provider.name(), status);
    guard.failure(Clock::duration::zero());
    return AttemptResult::failed(make_failure(
        GatewayError::upstream_error("Provider '" + provider.name() + "' answered with a redirect (HTTP " +
                                     std::to_string(status) + "); sluice does not follow redirects."),
        FailKind::other, status));
}

/// The provider answered with an error status: read (bounded), translate, judge.
net::awaitable<AttemptResult> error_answer(RequestContext& ctx, const Target& target,
                                           std::string_view upstream_model, UpstreamExchange& ex,
                                           const AttemptTimeouts& t, Clock::time_point deadline,
                                           AttemptGuard& guard) {
    const Provider& provider = *target.provider;
    const http1::MessageHead& head = ex.head();
    std::string body;
    ex.connection().deadline().expires_at(std::min(Clock::now() + t.idle, deadline));
    const auto body_began = Clock::now();
    const auto body_err = co_await ex.read_body(kMaxErrorBody, body);
    ctx.upstream_time += Clock::now() - body_began;
    if (body_err && body_err->kind == FailKind::client_gone) {
        co_return AttemptResult::client_gone();
    }
    AttemptFailure f;
    f.error = error_from_response(provider, head, body, f.retry_after);
    f.kind = FailKind::status;
    f.status = head.status;
    if (head.status >= 500 || head.status == 429 || f.error.code == "upstream_auth_error") {
        log::warn("request {}: provider '{}' answered HTTP {}: {}", ctx.request_id, provider.name(),
                  head.status, f.error.message);
        judge(target, upstream_model, guard, f);
    } else {
        guard.success();  // a client error, judged correctly: the target is healthy
    }
    if (!body_err && ex.reusable()) {
        ex.keep();
    }
    co_return AttemptResult::failed(std::move(f));
}

/// A 2xx event stream, relayed.
net::awaitable<AttemptResult> stream_answer(ClientLink& link, RequestContext& ctx, const Target& target,
                                            const ProviderRequest& preq, std::string_view upstream_model,
                                            UpstreamExchange& ex, const AttemptTimeouts& t,
                                            Clock::time_point deadline, AttemptGuard& guard,
                                            Clock::time_point began) {
    const Provider& provider = *target.provider;
    if (!content_type_is(ex.head().find("content-type"), provider.stream_content_type())) {
        // F4: a stream was asked for, a non-SSE body came back; nothing was sent yet.
        guard.failure(Clock::duration::zero());
        co_return AttemptResult::failed(make_failure(
            GatewayError::upstream_error("Provider '" + provider.name() +
                                         "' answered a streaming request without an event stream."),
            FailKind::other, ex.head().status));
    }
    StreamSource source;
    source.conn = &ex.connection();
    source.head = &ex.head();
    source.request = preq.api;
    RelayResult r = co_await relay_stream(link, ctx, provider, source, deadline, t, &guard, began);
    if (r.uncommitted) {
        if (r.uncommitted->gateway_verdict) {
            guard.neutral();
        } else {
            judge(target, upstream_model, guard, *r.uncommitted);
        }
        co_return AttemptResult::failed(std::move(*r.uncommitted));
    }
    if (r.reusable) {
        ex.keep();
    }
    co_return answered(link);
}

/// A 2xx JSON answer: read whole (bounded), translated to the client's shape, sent.
net::awaitable<AttemptResult> json_answer(ClientLink& link, RequestContext& ctx, const Route& route,
                                          const Provider& provider, const ProviderRequest& preq,
                                          UpstreamExchange& ex, Clock::time_point deadline,
                                          AttemptGuard& guard, Clock::time_point began) {
    const int status = ex.head().status;
    std::string body;
    ex.connection().deadline().expires_at(deadline);
    const auto body_began = Clock::now();
    auto body_err = co_await ex.read_body(provider.settings().max_response_bytes, body);
    ctx.upstream_time += Clock::now() - body_began;
    if (body_err) {
        if (body_err->kind == FailKind::client_gone) {
            co_return AttemptResult::client_gone();
        }
        guard.failure(Clock::duration::zero());
        // The provider may have billed: FailKind::other, never retried.
        co_return AttemptResult::failed(make_failure(std::move(body_err->error), FailKind::other, status));
    }
    if (ex.reusable()) {
        ex.keep();
    }
    Answer answer;
    if (auto translate_err = translate_answer(ctx, provider, preq, body, answer)) {
        guard.failure(Clock::duration::zero());
        co_return AttemptResult::failed(make_failure(std::move(*translate_err), FailKind::other, status));
    }
    guard.success();
    guard.observe(ms_between(began, Clock::now()), -1.0);
    if (!route.on_content_policy.empty() && answer.refused) {
        co_return AttemptResult::failed(make_failure(
            GatewayError::bad_request(
                "Provider '" + provider.name() + "' refused the request under its content policy.",
                "content_policy_violation"),
            FailKind::other, status));
    }
    if (auto refused = filter_body(ctx, body, status)) {
        co_return AttemptResult::failed(std::move(*refused));
    }
    // The body is JSON in OpenAI's shape (translated when the provider speaks another dialect):
    // keep the provider's JSON content type (with its charset), else say application/json.
    auto content_type = ex.head().find("content-type");
    if (content_type.size() < 16 || !iequals(content_type.substr(0, 16), "application/json")) {
        content_type = "application/json";
    }
    co_await send_body(link, ctx, 200, content_type, body);
    co_return answered(link);
}

}  // namespace

net::awaitable<AttemptResult> run_attempt(ClientLink& link, RequestContext& ctx, const Route& route,
                                          const Target& target, Clock::time_point total_deadline,
                                          AttemptGuard& guard) {
    const Provider& provider = *target.provider;
    const std::string_view upstream_model = target.upstream_model(ctx.api.model);
    const std::size_t attempt_index = ctx.attempts.size();
    ctx.attempts.push_back(Attempt{&provider, &route, std::string(upstream_model), 0, {}, {}, {}});
    const auto began = Clock::now();

    ProviderRequest preq;
    UpstreamRequest req;
    std::optional<GatewayError> build_err = ingress(ctx, provider, upstream_model, preq);
    if (!build_err) {
        build_err = provider.build_request(*preq.api, upstream_model, req);
    }
    if (build_err) {
        guard.neutral();  // the request cannot be expressed for this provider: the client's to fix
        co_return AttemptResult::failed(make_failure(std::move(*build_err)));
    }
    if (auto refused = ctx.runtime.filters().on_upstream_request(ctx, target, req)) {
        guard.neutral();
        co_return AttemptResult::failed(make_failure(std::move(*refused)));
    }
    if (provider.local()) {
        AttemptResult local = co_await answer_local(link, ctx, provider, preq, req, guard);
        ctx.attempts[attempt_index].status = local.failure ? local.failure->status : ctx.status;
        co_return local;
    }

    const AttemptTimeouts t = effective_timeouts(route, target);
    const auto deadline = std::min(total_deadline, began + t.request);
    UpstreamExchange ex(link.worker, ctx.runtime, &link, provider);
    auto err = co_await ex.send(req, ctx.request_id, deadline, t);
    ctx.upstream_time += Clock::now() - began;
    if (err) {
        co_return exchange_failed(ctx, std::move(*err), guard);
    }
    const int status = ex.head().status;
    ctx.attempts[attempt_index].status = status;
    ctx.runtime.filters().on_upstream_response(ctx, UpstreamResponseHead(provider, status, &ex.head()));
    if (status >= 300 && status < 400) {
        co_return redirected(ctx, provider, status, guard);
    }
    if (status < 200 || status >= 300) {
        co_return co_await error_answer(ctx, target, upstream_model, ex, t, deadline, guard);
    }
    if (ctx.api.stream) {
        co_return co_await stream_answer(link, ctx, target, preq, upstream_model, ex, t, deadline, guard,
                                         began);
    }
    co_return co_await json_answer(link, ctx, route, provider, preq, ex, deadline, guard, began);
}

}  // namespace sluice::proxy
