#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/ssl/context.hpp>
#include <sluice/config.hpp>
#include <sluice/filter.hpp>
#include <sluice/provider.hpp>
#include <sluice/request_context.hpp>

#include "filters/chain.hpp"

namespace sluice {

/// Everything built from one config: providers, TLS contexts, routes, keys and the filters.
/// Immutable and shared by all workers through a shared_ptr snapshot: a request keeps the
/// snapshot it started with.
class Runtime {
public:
    /// Builds the runtime; throws ConfigError (e.g. an unreadable ca_file).
    static std::shared_ptr<const Runtime> build(GatewayConfig cfg);
    /// The same with `extra` filters after the configured ones, before the access log (tests;
    /// embedders).
    static std::shared_ptr<const Runtime> build(GatewayConfig cfg,
                                                std::vector<std::shared_ptr<const Filter>> extra);

    const GatewayConfig& config() const noexcept { return cfg_; }
    /// Unique per built runtime in this process (an address may be reused after a reload).
    std::uint64_t generation() const noexcept { return generation_; }
    const Provider* provider(std::string_view name) const noexcept;
    const std::vector<std::unique_ptr<Provider>>& providers() const noexcept { return providers_; }
    /// The TLS client context for an https provider; nullptr for plain HTTP and local providers.
    boost::asio::ssl::context* tls_context(const Provider* p) const noexcept;

    /// First route whose pattern matches, in file order; nullptr when none.
    const Route* match(std::string_view model) const noexcept;
    const std::vector<Route>& routes() const noexcept { return routes_; }

    bool auth_enabled() const noexcept { return !keys_.empty(); }
    /// The key whose SHA-256 equals the presented key's (digests compared in constant time).
    /// With a memo, the digest of the key the connection presented last is reused when the
    /// same key is presented again (compared in constant time), and the memo keeps the new one.
    const KeyEntry* authenticate(std::string_view presented, ConnectionMemo* memo = nullptr) const;

    /// The up/down flag active health checks keep for a provider; nullptr when it has none.
    std::shared_ptr<std::atomic<bool>> provider_up(const Provider* p) const;

    const FilterChain& filters() const noexcept { return *filters_; }
    /// Notes found while building (disabled providers, routes left without targets).
    const std::vector<std::string>& warnings() const noexcept { return warnings_; }

private:
    Runtime() = default;

    GatewayConfig cfg_;
    std::uint64_t generation_ = 0;
    std::vector<std::unique_ptr<Provider>> providers_;
    std::unordered_map<std::string, const Provider*> by_name_;
    std::map<const Provider*, std::unique_ptr<boost::asio::ssl::context>> tls_;
    std::map<const Provider*, std::shared_ptr<std::atomic<bool>>> provider_up_;
    std::map<const Provider*, std::shared_ptr<routing::Pauses>> pauses_;
    std::vector<Route> routes_;
    std::vector<KeyEntry> keys_;
    std::unordered_map<std::string, std::size_t> key_by_digest_;
    std::unique_ptr<FilterChain> filters_;
    std::vector<std::string> warnings_;
};

}  // namespace sluice
