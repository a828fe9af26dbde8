#pragma once

#include <optional>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <sluice/error.hpp>
#include <sluice/request_context.hpp>

namespace sluice {

/// Outcome of a request stage: continue, or answer now with an OpenAI-shaped error.
struct StageResult {
    std::optional<GatewayError> reply;
    static StageResult next() { return {}; }
    static StageResult respond(GatewayError error) { return {std::move(error)}; }
};

/// One step of the request pipeline (auth → rate limit → routing → guardrails), built once from
/// config and shared by every worker, hence const. Per-request state lives in RequestContext;
/// shared mutable state belongs in an injected, thread-safe service.
class Stage {
public:
    virtual ~Stage() = default;
    virtual std::string_view name() const noexcept = 0;
    /// Called once per request, in pipeline order, before any upstream I/O. A stage says no by
    /// returning StageResult::respond(...), never by throwing.
    virtual boost::asio::awaitable<StageResult> on_request(RequestContext& ctx) const = 0;
};

/// Synchronous per-chunk hook on streamed output (guardrails on deltas, later issues). Called by
/// the forwarder for each event written to the client; must not block.
class ChunkHook {
public:
    virtual ~ChunkHook() = default;
    enum class Verdict { pass, stop };
    virtual Verdict on_chunk(RequestContext& ctx, std::string_view encoded_events) const = 0;
};

}  // namespace sluice
