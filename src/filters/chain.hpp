#pragma once

// The filter chain of one runtime: the filters in order, and per hook the ones that use it.

#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <sluice/filter.hpp>

namespace sluice {

/// A stream filter of one attempt, with the name of the filter that made it.
struct ActiveStreamFilter {
    std::string_view name;
    std::unique_ptr<StreamFilter> filter;
};

class FilterChain {
public:
    explicit FilterChain(std::vector<std::shared_ptr<const Filter>> filters);

    /// Every request filter in order; the first verdict that is not proceed is the answer.
    boost::asio::awaitable<RequestVerdict> on_request(RequestContext& ctx) const;
    /// The first refusal, if any filter refuses.
    std::optional<GatewayError> on_upstream_request(RequestContext& ctx, const Target& target,
                                                    UpstreamRequest& req) const;
    void on_upstream_response(RequestContext& ctx, const UpstreamResponseHead& head) const;
    /// The stream filters of one streaming attempt, in chain order (empty: none needs deltas).
    std::vector<ActiveStreamFilter> on_stream(const RequestContext& ctx) const;
    /// Runs the body filters over a non-stream answer in the client's dialect (`body`, rewritten
    /// in place where a filter edited it); the first refusal, if any. Free when none is set.
    std::optional<GatewayError> on_response_body(const RequestContext& ctx, std::string& body) const;
    void on_response_head(const RequestContext& ctx, int status, ResponseHeaders& headers) const;
    void on_complete(const RequestContext& ctx, const Outcome& outcome) const;

    const std::vector<std::shared_ptr<const Filter>>& filters() const noexcept { return all_; }

private:
    std::vector<std::shared_ptr<const Filter>> all_;
    std::vector<const Filter*> request_;
    std::vector<const Filter*> upstream_request_;
    std::vector<const Filter*> upstream_response_;
    std::vector<const Filter*> stream_;
    std::vector<const Filter*> response_body_;
    std::vector<const Filter*> response_head_;
    std::vector<const Filter*> complete_;
};

/// The outcome of a finished request, from its context.
Outcome outcome_of(const RequestContext& ctx);

}  // namespace sluice
