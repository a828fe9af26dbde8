#pragma once

// The built-in filters every runtime starts with, in this order: auth, then route. Each
// capability that follows (rate limits, guardrails, caching) is a filter of its own file,
// placed after these by the factory table (filters/registry.cpp); the access log is last.

#include <memory>
#include <string_view>

#include <sluice/filter.hpp>

namespace sluice {

/// Authenticates the caller's virtual key (Authorization: Bearer, x-api-key, api-key).
class AuthFilter final : public Filter {
public:
    std::string_view name() const noexcept override { return "auth"; }
    unsigned hooks() const noexcept override { return request; }
    boost::asio::awaitable<RequestVerdict> on_request(RequestContext& ctx) const override;
};

/// Validates the body, enforces the key's model allow-list and matches the route (the router
/// then plans the attempts on its targets).
class RouteFilter final : public Filter {
public:
    std::string_view name() const noexcept override { return "route"; }
    unsigned hooks() const noexcept override { return request; }
    boost::asio::awaitable<RequestVerdict> on_request(RequestContext& ctx) const override;
};

/// One access-log line per request: the last completion hook.
class AccessLogFilter final : public Filter {
public:
    std::string_view name() const noexcept override { return "access_log"; }
    unsigned hooks() const noexcept override { return complete; }
    void on_complete(const RequestContext& ctx, const Outcome& outcome) const override;
};

/// The key the client presented, from Authorization: Bearer, x-api-key or api-key.
std::string_view presented_key(const RequestContext& ctx) noexcept;

}  // namespace sluice
