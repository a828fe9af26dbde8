#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include <sluice/stage.hpp>

namespace sluice {

/// Authenticates the caller's virtual key (Authorization: Bearer, x-api-key, api-key).
class AuthStage final : public Stage {
public:
    std::string_view name() const noexcept override { return "auth"; }
    boost::asio::awaitable<StageResult> on_request(RequestContext& ctx) const override;
};

/// Rate limits and budgets. Its place in the pipeline is fixed here; the limits themselves arrive
/// with the rate-limit issue. Until then every request passes.
class RateLimitStage final : public Stage {
public:
    std::string_view name() const noexcept override { return "rate_limit"; }
    boost::asio::awaitable<StageResult> on_request(RequestContext& ctx) const override;
};

/// Validates the body, enforces the key's model allow-list, matches a route and picks a target.
class RoutingStage final : public Stage {
public:
    std::string_view name() const noexcept override { return "routing"; }
    boost::asio::awaitable<StageResult> on_request(RequestContext& ctx) const override;
};

/// Request guardrails. Its place in the pipeline is fixed here; checks arrive with the
/// guardrails issue. Until then every request passes.
class GuardrailStage final : public Stage {
public:
    std::string_view name() const noexcept override { return "guardrails"; }
    boost::asio::awaitable<StageResult> on_request(RequestContext& ctx) const override;
};

/// The pipeline in its fixed order: auth → rate_limit → routing → guardrails.
std::vector<std::unique_ptr<Stage>> make_stages();

/// The key the client presented, from Authorization: Bearer, x-api-key or api-key.
std::string_view presented_key(const RequestContext& ctx) noexcept;

}  // namespace sluice
