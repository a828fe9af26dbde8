#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice {

using Duration = std::chrono::milliseconds;

/// Plain configuration structs, decoded from YAML by load_config(). Every field has its default
/// here; runtime objects are built from these once (see runtime.hpp) and never see YAML.
struct ServerConfig {
    std::string listen = "127.0.0.1:8080";
    int threads = 0;                        ///< 0 = one worker per core
    std::size_t max_header_bytes = 16384;   ///< request line + headers → 431 above
    std::size_t max_body_bytes = 10485760;  ///< → 413
    Duration header_timeout{10000};         ///< absolute, from the first byte → 408
    Duration body_timeout{60000};           ///< absolute, for the whole body → 408
    Duration idle_timeout{60000};           ///< keep-alive idle between requests
    Duration write_timeout{60000};          ///< longest stall writing to a client
    Duration drain_timeout{30000};          ///< SIGTERM: how long in-flight requests may finish
    std::size_t max_connections = 10000;    ///< downstream connections per process
    std::size_t max_requests_per_connection = 1000;
    /// Serve a non-loopback address with no keys while a real provider is enabled. Off: that
    /// combination is a start-up error (anyone who reaches the port would spend the provider key).
    bool allow_unauthenticated = false;
};

struct LogConfig {
    std::string level = "info";   ///< trace|debug|info|warn|error|off
    std::string format = "text";  ///< text|json
    bool access_log = true;
    /// Lines waiting for a blocked output before new ones are dropped (and counted).
    std::size_t queue_lines = 16384;
};

struct ProviderConfig {
    std::string name;
    std::string kind;  ///< openai | azure | mock | a catalogue preset (groq, ...)
    std::string base_url;
    std::string api_key;       ///< resolved secret; never logged
    bool api_key_set = false;  ///< `api_key:` present in YAML
    std::string ca_file;
    Duration connect_timeout{10000};
    Duration first_byte_timeout{60000};
    Duration idle_timeout{120000};
    Duration request_timeout{600000};
    Duration first_token_timeout{0};    ///< streams: attempt start -> first relayed event; 0 = off
    Duration pool_idle_timeout{55000};  ///< an idle pooled connection older than this is closed
    std::size_t max_connections = 256;  ///< per worker
    std::size_t max_response_bytes = 64 * 1024 * 1024;  ///< non-stream answers
    std::map<std::string, std::string> headers;         ///< extra headers sent upstream
    // Active health checks (GET of the provider's model list); interval 0 = off.
    Duration health_interval{0};
    Duration health_timeout{5000};
    unsigned health_unhealthy_after = 2;  ///< failed checks in a row that take it out
    unsigned health_healthy_after = 1;    ///< passed checks in a row that bring it back
    std::string api_version;              ///< azure: "2024-10-21" (dated API) or "v1"
    int default_max_tokens = 4096;        ///< anthropic: max_tokens when the request has none
    /// Translating kinds: request fields the provider cannot represent are dropped instead of
    /// refused with 400 (LiteLLM's drop_params). Wrong types are refused either way.
    bool drop_unsupported_params = false;
    std::string region;  ///< bedrock: AWS region, e.g. us-east-1
    // mock only
    std::vector<std::string> mock_models;
    int mock_embedding_dimensions = 8;
    int yaml_line = 0;
};

/// Per-route or per-target overrides of a provider's timeouts (unset = the provider's value).
struct TimeoutOverrides {
    std::optional<Duration> connect;
    std::optional<Duration> first_byte;
    std::optional<Duration> first_token;
    std::optional<Duration> idle;
};

/// Circuit breaker of one target: opens after `consecutive_failures` failures in a row or when
/// failures reach `error_ratio` of at least `min_requests` requests within `window`; stays open
/// for `cooldown` (at least the provider's Retry-After), then lets one probe request through.
struct BreakerConfig {
    bool enabled = true;
    unsigned consecutive_failures = 5;  ///< 0 = this trigger off
    double error_ratio = 0.5;           ///< 0 = this trigger off
    Duration window{30000};
    unsigned min_requests = 20;
    Duration cooldown{30000};
};

/// When and how a route tries again after a failed attempt.
struct RetryConfig {
    unsigned attempts = 3;           ///< tries within the route, the first included
    Duration backoff_base{100};      ///< exponential backoff with full jitter ...
    Duration backoff_cap{2000};      ///< ... never above this
    Duration retry_after_cap{5000};  ///< a longer Retry-After moves on instead of waiting
    bool on_connect_error = true;    ///< connection refused, DNS, TLS, pool exhausted
    bool on_timeout = true;          ///< connect, first-byte and first-token timeouts
    bool on_reset = false;           ///< the provider closed the connection before answering
    std::vector<int> on_status{429, 500, 502, 503, 504, 529};
};

struct TargetConfig {
    std::string provider;
    std::string model;  ///< upstream model name; empty = the client's
    unsigned weight = 1;
    TimeoutOverrides timeouts;
    std::optional<BreakerConfig> breaker;  ///< replaces the route's breaker settings
    int yaml_line = 0;
};

struct RouteConfig {
    std::string name;   ///< for fallbacks and logs; defaults to `model`
    std::string model;  ///< exact name or glob (*, ?, [...]); empty = reachable only as a fallback
    std::string strategy = "weighted";  ///< weighted | fallback | least_latency | least_busy
    std::vector<TargetConfig> targets;
    RetryConfig retries;
    BreakerConfig breaker;
    TimeoutOverrides timeouts;
    Duration total_timeout{600000};      ///< bounds all attempts (fallback routes included)
    double latency_band = 0.2;           ///< least_latency: targets within +20% of the best share
    double latency_explore = 0.05;       ///< least_latency: share of picks made at random
    std::vector<std::string> fallbacks;  ///< route names tried once these targets are exhausted
    /// Error class (context_length_exceeded, content_policy) -> route names tried on that error.
    std::vector<std::pair<std::string, std::vector<std::string>>> fallback_on;
    int yaml_line = 0;
};

struct KeyConfig {
    std::string name;
    std::string key;                  ///< plain key (resolved); empty when sha256 is used
    std::string sha256_hex;           ///< lower-case hex digest of the key
    std::vector<std::string> models;  ///< allow-list of globs; empty = all models
    int yaml_line = 0;
};

struct GatewayConfig {
    ServerConfig server;
    LogConfig log;
    std::vector<ProviderConfig> providers;  ///< in file order
    std::vector<RouteConfig> routes;
    std::vector<KeyConfig> keys;
    std::vector<std::string> warnings;  ///< non-fatal notes found while loading
};

/// Thrown by load_config()/validate_config() with every problem found, one per line, each
/// naming its YAML path and line.
class ConfigError : public std::runtime_error {
public:
    explicit ConfigError(std::vector<std::string> errors);
    const std::vector<std::string>& errors() const noexcept { return errors_; }

private:
    std::vector<std::string> errors_;
};

/// Reads, substitutes ${VAR} / ${VAR:-default}, decodes and validates a YAML config file.
GatewayConfig load_config_file(const std::string& path);
/// Same, from text (tests). `env` overrides getenv when non-null.
GatewayConfig load_config_text(const std::string& text,
                               const std::map<std::string, std::string>* env = nullptr);

/// A named OpenAI-compatible vendor: `kind: groq` means kind openai with this base URL.
struct ProviderPreset {
    const char* kind;
    const char* base_url;
    bool needs_key;  ///< hosted vendors need an api_key; local servers do not
};
/// The preset for `kind`, or nullptr.
const ProviderPreset* find_preset(std::string_view kind) noexcept;
/// Every preset, for documentation and error messages.
const std::vector<ProviderPreset>& provider_presets();

/// Parses "500ms", "10s", "5m", "1h", "0". Returns nullopt on anything else.
std::optional<Duration> parse_duration(std::string_view text);

}  // namespace sluice
