#include "filters/chain.hpp"

#include "filters/body_view.hpp"

namespace sluice {

FilterChain::FilterChain(std::vector<std::shared_ptr<const Filter>> filters) : all_(std::move(filters)) {
    for (const auto& f : all_) {
        const unsigned h = f->hooks();
        const auto add = [&](unsigned bit, std::vector<const Filter*>& list) {
            if ((h & bit) != 0) {
                list.push_back(f.get());
            }
        };
        add(Filter::request, request_);
        add(Filter::upstream_request, upstream_request_);
        add(Filter::upstream_response, upstream_response_);
        add(Filter::stream, stream_);
        add(Filter::response_body, response_body_);
        add(Filter::response_head, response_head_);
        add(Filter::complete, complete_);
    }
}

boost::asio::awaitable<RequestVerdict> FilterChain::on_request(RequestContext& ctx) const {
    for (const Filter* f : request_) {
        RequestVerdict v = co_await f->on_request(ctx);
        if (v.kind != RequestVerdict::Kind::proceed) {
            co_return v;
        }
    }
    co_return RequestVerdict::proceed();
}

std::optional<GatewayError> FilterChain::on_upstream_request(RequestContext& ctx, const Target& target,
                                                             UpstreamRequest& req) const {
    for (const Filter* f : upstream_request_) {
        if (auto refused = f->on_upstream_request(ctx, target, req)) {
            return refused;
        }
    }
    return std::nullopt;
}

void FilterChain::on_upstream_response(RequestContext& ctx, const UpstreamResponseHead& head) const {
    for (const Filter* f : upstream_response_) {
        f->on_upstream_response(ctx, head);
    }
}

std::vector<ActiveStreamFilter> FilterChain::on_stream(const RequestContext& ctx) const {
    std::vector<ActiveStreamFilter> active;
    for (const Filter* f : stream_) {
        if (auto sf = f->on_stream(ctx)) {
            active.push_back({f->name(), std::move(sf)});
        }
    }
    return active;
}

std::optional<GatewayError> FilterChain::on_response_body(const RequestContext& ctx,
                                                          std::string& body) const {
    if (response_body_.empty()) {
        return std::nullopt;
    }
    return filter_response_body(response_body_, ctx, body);
}

void FilterChain::on_response_head(const RequestContext& ctx, int status, ResponseHeaders& headers) const {
    for (const Filter* f : response_head_) {
        f->on_response_head(ctx, status, headers);
    }
}

void FilterChain::on_complete(const RequestContext& ctx, const Outcome& outcome) const {
    for (const Filter* f : complete_) {
        f->on_complete(ctx, outcome);
    }
}

Outcome outcome_of(const RequestContext& ctx) {
    Outcome o;
    o.status = ctx.status;
    o.error_code = ctx.error_code;
    o.client_gone = ctx.client_gone;
    o.served = ctx.served;
    o.stream = ctx.api.stream;
    o.billed = ctx.usage;
    o.attempts = ctx.attempts;
    const auto now = RequestContext::Clock::now();
    o.total = now - ctx.started;
    o.upstream = ctx.upstream_time;
    o.retry_wait = ctx.retry_wait;
    if (ctx.first_byte.time_since_epoch().count() != 0) {
        o.first_byte = ctx.first_byte - ctx.started;
    }
    return o;
}

}  // namespace sluice
