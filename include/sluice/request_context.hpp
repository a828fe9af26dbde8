#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sluice/config.hpp>
#include <sluice/provider.hpp>

namespace sluice {

namespace http1 {
struct MessageHead;
}
class Runtime;
namespace routing {
class TargetHealth;
class Pauses;
}  // namespace routing

/// A virtual key from the config. Keys are held as SHA-256 digests only.
struct KeyEntry {
    std::string name;
    std::string digest;               ///< raw 32-byte SHA-256 of the key
    std::vector<std::string> models;  ///< allow-list of globs; empty = every model
    bool allows(std::string_view model) const noexcept;
};

struct Target {
    const Provider* provider = nullptr;
    std::string model;  ///< upstream model; empty = the client's
    unsigned weight = 1;
    TimeoutOverrides timeouts;
    /// Breaker, in-flight and latency state, shared by all workers.
    std::shared_ptr<routing::TargetHealth> health;
    /// The provider's Retry-After pauses per upstream model (shared with its other targets).
    std::shared_ptr<routing::Pauses> pauses;
    /// The model this target sends for a client's `model`.
    std::string_view upstream_model(std::string_view client_model) const noexcept {
        return model.empty() ? client_model : std::string_view(model);
    }
};

struct Route {
    std::string name;
    std::string pattern;  ///< empty: reachable only as a fallback
    bool glob = false;
    std::vector<Target> targets;          ///< enabled targets only
    const RouteConfig* config = nullptr;  ///< strategy, retries, timeouts (the runtime's copy)
    int strategy = 0;                     ///< routing::Strategy
    std::vector<const Route*> fallbacks;
    std::vector<const Route*> on_context_length;  ///< fallback_on.context_length_exceeded
    std::vector<const Route*> on_content_policy;  ///< fallback_on.content_policy
    bool matches(std::string_view model) const noexcept;
};

/// What one client connection remembers between its requests (keep-alive). A filter may keep
/// here a result that depends only on what this same connection sent before; it is never shared
/// with another connection, so nothing one client presented is compared with another's.
struct ConnectionMemo {
    std::string key;         ///< the API key the connection's previous request presented
    std::string key_digest;  ///< its raw SHA-256
};

/// One attempt at an upstream, for the access log.
struct Attempt {
    const Provider* provider = nullptr;
    const Route* route = nullptr;
    std::string model;
    int status = 0;
    std::string error;  ///< code of the failure, empty on success
    std::chrono::steady_clock::duration duration{};
    Usage usage;  ///< what this attempt reported (a failed stream may have some)
};

/// Everything sluice knows about one API request while it runs. Owned by the downstream session's
/// coroutine frame; filters read and fill it in chain order. Not thread-safe (one worker).
struct RequestContext {
    using Clock = std::chrono::steady_clock;

    RequestContext(const Runtime& rt, const http1::MessageHead& h) : runtime(rt), head(h) {}

    const Runtime& runtime;
    const http1::MessageHead& head;
    std::string request_id;
    Endpoint endpoint = Endpoint::chat_completions;
    ApiRequest api;                 ///< parsed by the routing stage (models: unused)
    const KeyEntry* key = nullptr;  ///< set by auth; nullptr when auth is off
    const Route* route = nullptr;
    const Target* target = nullptr;
    /// The client connection's memo; nullptr where a request has no connection (tests).
    ConnectionMemo* connection = nullptr;

    // Outcome, for accounting and the access log.
    int status = 0;
    std::string error_code;
    Usage usage;
    std::vector<Attempt> attempts;
    std::uint64_t bytes_in = 0;
    std::uint64_t bytes_out = 0;
    Clock::time_point started = Clock::now();
    Clock::time_point first_byte{};   ///< first response byte written to the client
    Clock::duration upstream_time{};  ///< spent waiting on providers (connect, answer), summed
    Clock::duration retry_wait{};     ///< spent in backoff and Retry-After waits between attempts
    bool client_gone = false;
    /// The request reached the filter chain: its response head and completion hooks run.
    bool filtered = false;
    bool served = false;  ///< a request filter answered it (an error or a served 200)

    /// First value of the named request header (case-insensitive); empty when absent.
    std::string_view header(std::string_view name) const noexcept;
};

}  // namespace sluice
