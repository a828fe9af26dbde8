#include "runtime/runtime.hpp"

#include <atomic>
#include <cstdlib>

#include "filters/registry.hpp"
#include "providers/registry.hpp"
#include "routing/health.hpp"
#include "routing/pauses.hpp"
#include "routing/select.hpp"
#include "util/strings.hpp"
#include "util/url.hpp"

namespace sluice {

namespace net = boost::asio;

bool KeyEntry::allows(std::string_view model) const noexcept {
    if (models.empty()) {
        return true;
    }
    for (const auto& g : models) {
        if (glob_match(g, model)) {
            return true;
        }
    }
    return false;
}

bool Route::matches(std::string_view model) const noexcept {
    if (pattern.empty()) {
        return false;  // fallback-only
    }
    return glob ? glob_match(pattern, model) : pattern == model;
}

namespace {
std::string digest_of(std::string_view key) {
    const std::array<unsigned char, 32> md = sha256(key);
    return std::string(reinterpret_cast<const char*>(md.data()), md.size());
}

std::string digest_from_hex(const std::string& hex) {
    std::string out;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    return out;
}
}  // namespace

namespace {
/// Safe by default: a gateway reachable beyond this host, with no keys, in front of a provider
/// that spends real money, would let anyone who finds the port use the provider key.
std::optional<std::string> unauthenticated_exposure(const Runtime& rt) {
    const ServerConfig& sc = rt.config().server;
    const auto hp = parse_host_port(sc.listen);
    if (sc.allow_unauthenticated || !rt.config().keys.empty() || !hp || is_loopback_host(hp->host)) {
        return std::nullopt;
    }
    for (const auto& p : rt.providers()) {
        if (p->enabled() && !p->local()) {
            return "server.listen: '" + sc.listen +
                   "' is reachable from other hosts, no keys are "
                   "configured and provider '" +
                   p->name() +
                   "' is enabled, so anyone who reaches the "
                   "port could spend its key. Add client keys (keys: [{name: ..., key: \"${MY_KEY}\"}]), "
                   "listen on 127.0.0.1, or set server.allow_unauthenticated: true to accept the risk.";
        }
    }
    return std::nullopt;
}
}  // namespace

std::shared_ptr<const Runtime> Runtime::build(GatewayConfig cfg) {
    return build(std::move(cfg), {});
}

std::shared_ptr<const Runtime> Runtime::build(GatewayConfig cfg,
                                              std::vector<std::shared_ptr<const Filter>> extra) {
    std::shared_ptr<Runtime> rt(new Runtime());
    static std::atomic<std::uint64_t> generations{0};
    rt->generation_ = generations.fetch_add(1) + 1;
    rt->cfg_ = std::move(cfg);
    std::vector<std::string> errors;
    for (const auto& pc : rt->cfg_.providers) {
        const ProviderKind* kind = find_provider_kind(pc.kind);
        if (kind == nullptr) {
            errors.push_back("providers." + pc.name + ".kind: unknown provider kind '" + pc.kind + "'");
            continue;
        }
        std::unique_ptr<Provider> p = kind->make(pc);
        if (!p->enabled()) {
            rt->warnings_.push_back("provider '" + pc.name +
                                    "' is disabled: " + std::string(kind->disabled_reason));
        }
        if (!p->local()) {
            if (p->settings().tls) {
                auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
                ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                                 net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                                 net::ssl::context::no_tlsv1_1);
                ctx->set_verify_mode(net::ssl::verify_peer);
                boost::system::error_code ec;
                ctx->set_default_verify_paths(ec);
                if (!pc.ca_file.empty()) {
                    ctx->load_verify_file(pc.ca_file, ec);
                    if (ec) {
                        errors.push_back("providers." + pc.name + ".ca_file: cannot load '" + pc.ca_file +
                                         "': " + ec.message());
                    }
                }
                rt->tls_[p.get()] = std::move(ctx);
            }
        }
        if (pc.health_interval.count() > 0) {
            rt->provider_up_[p.get()] = std::make_shared<std::atomic<bool>>(true);
        }
        rt->pauses_[p.get()] = std::make_shared<routing::Pauses>();
        rt->by_name_[pc.name] = p.get();
        rt->providers_.push_back(std::move(p));
    }
    if (auto unsafe = unauthenticated_exposure(*rt)) {
        errors.push_back(std::move(*unsafe));
    }
    if (!errors.empty()) {
        throw ConfigError(std::move(errors));
    }
    // Routes: built first, fallback references resolved once the vector no longer moves.
    std::vector<const RouteConfig*> built_from;
    for (std::size_t i = 0; i < rt->cfg_.routes.size(); ++i) {
        const auto& rc = rt->cfg_.routes[i];
        Route r;
        r.name = rc.name;
        r.pattern = rc.model;
        r.glob = is_glob(rc.model);
        r.config = &rc;
        r.strategy = static_cast<int>(routing::parse_strategy(rc.strategy));
        for (const auto& tc : rc.targets) {
            const Provider* p = rt->provider(tc.provider);
            if (p == nullptr || !p->enabled() || tc.weight == 0) {
                continue;
            }
            Target t;
            t.provider = p;
            t.model = tc.model;
            t.weight = tc.weight;
            t.timeouts = tc.timeouts;
            const std::string label =
                "'" + rc.name + "' -> " + tc.provider + (tc.model.empty() ? "" : "/" + tc.model);
            t.health = std::make_shared<routing::TargetHealth>(tc.breaker.value_or(rc.breaker), label);
            t.health->set_provider_up(rt->provider_up(p));
            t.pauses = rt->pauses_.at(p);
            r.targets.push_back(std::move(t));
        }
        if (r.targets.empty()) {
            rt->warnings_.push_back("route '" + rc.name + "' has no enabled target and is skipped");
            continue;
        }
        rt->routes_.push_back(std::move(r));
    }
    std::unordered_map<std::string, const Route*> route_by_name;
    for (const auto& r : rt->routes_) {
        route_by_name[r.name] = &r;
    }
    for (auto& r : rt->routes_) {
        auto resolve = [&](const std::vector<std::string>& names, std::vector<const Route*>& out,
                           const std::string& what) {
            for (const auto& n : names) {
                const auto it = route_by_name.find(n);
                if (it == route_by_name.end()) {
                    rt->warnings_.push_back("route '" + r.name + "': " + what + " '" + n +
                                            "' has no enabled target and is left out");
                } else {
                    out.push_back(it->second);
                }
            }
        };
        resolve(r.config->fallbacks, r.fallbacks, "fallback");
        for (const auto& [cls, names] : r.config->fallback_on) {
            resolve(names, cls == "content_policy" ? r.on_content_policy : r.on_context_length,
                    "fallback_on." + cls + " route");
        }
    }
    for (const auto& kc : rt->cfg_.keys) {
        KeyEntry k;
        k.name = kc.name;
        k.models = kc.models;
        k.digest = kc.sha256_hex.empty() ? digest_of(kc.key) : digest_from_hex(kc.sha256_hex);
        if (rt->key_by_digest_.count(k.digest)) {
            throw ConfigError({"keys: '" + kc.name + "' has the same key as another entry"});
        }
        rt->key_by_digest_[k.digest] = rt->keys_.size();
        rt->keys_.push_back(std::move(k));
    }
    // The plain key text is not needed after hashing; drop it from the runtime's config copy.
    for (auto& kc : rt->cfg_.keys) {
        kc.key.clear();
    }
    static const SystemClock system_clock;
    const Services services{system_clock};
    rt->filters_ = std::make_unique<FilterChain>(build_filters(rt->cfg_, services, std::move(extra)));
    return rt;
}

const Provider* Runtime::provider(std::string_view name) const noexcept {
    const auto it = by_name_.find(std::string(name));
    return it == by_name_.end() ? nullptr : it->second;
}

std::shared_ptr<std::atomic<bool>> Runtime::provider_up(const Provider* p) const {
    const auto it = provider_up_.find(p);
    return it == provider_up_.end() ? nullptr : it->second;
}

net::ssl::context* Runtime::tls_context(const Provider* p) const noexcept {
    const auto it = tls_.find(p);
    return it == tls_.end() ? nullptr : it->second.get();
}

const Route* Runtime::match(std::string_view model) const noexcept {
    for (const auto& r : routes_) {
        if (r.matches(model)) {
            return &r;
        }
    }
    return nullptr;
}

const KeyEntry* Runtime::authenticate(std::string_view presented, ConnectionMemo* memo) const {
    if (presented.empty() || presented.size() > 4096) {
        return nullptr;
    }
    // SDK clients send every request of a keep-alive connection with the same key: hashing it
    // once per connection instead of once per request is a tenth of a plain request's CPU.
    std::string fresh;
    if (memo == nullptr) {
        fresh = digest_of(presented);
    } else if (!constant_time_equals(memo->key, presented)) {
        memo->key.assign(presented);
        memo->key_digest = digest_of(presented);
    }
    const std::string& digest = memo == nullptr ? fresh : memo->key_digest;
    const auto it = key_by_digest_.find(digest);
    if (it == key_by_digest_.end()) {
        return nullptr;
    }
    const KeyEntry& k = keys_[it->second];
    // The map lookup can only reveal digest bits; the final check is constant time anyway.
    return constant_time_equals(k.digest, digest) ? &k : nullptr;
}

}  // namespace sluice
