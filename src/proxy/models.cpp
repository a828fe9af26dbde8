#include "proxy/models.hpp"

#include <map>
#include <mutex>
#include <set>

#include "log/log.hpp"
#include "proxy/upstream_exchange.hpp"
#include "server/client_writer.hpp"
#include "util/strings.hpp"

namespace sluice::proxy {

namespace {

struct ModelsCache {
    std::mutex mutex;
    /// (runtime generation, provider) -> (expiry, ids)
    std::map<std::pair<std::uint64_t, const Provider*>,
             std::pair<Clock::time_point, std::vector<std::string>>>
        entries;
};
ModelsCache& models_cache() {
    static ModelsCache cache;
    return cache;
}

/// A GET of a provider's model list: its status and body, or the error that stopped it.
struct ModelList {
    int status = 0;
    std::string body;
    std::optional<GatewayError> error;
};

net::awaitable<ModelList> fetch_model_list(Worker& worker, const Runtime& rt, const Provider& provider,
                                           const UpstreamRequest& req, std::string request_id,
                                           Clock::duration timeout) {
    ModelList out;
    AttemptTimeouts t = provider_timeouts(provider.settings());
    t.connect = std::min(t.connect, timeout);
    t.first_byte = timeout;
    const auto deadline = Clock::now() + timeout;
    UpstreamExchange ex(worker, rt, nullptr, provider);
    if (auto err = co_await ex.send(req, request_id, deadline, t)) {
        out.error = std::move(err->error);
        co_return out;
    }
    ex.connection().deadline().expires_at(deadline);
    if (auto err = co_await ex.read_body(8 * 1024 * 1024, out.body)) {
        out.error = std::move(err->error);
        co_return out;
    }
    out.status = ex.head().status;
    if (ex.reusable()) {
        ex.keep();
    }
    co_return out;
}

}  // namespace

net::awaitable<bool> check_provider(Worker& worker, const Runtime& rt, const Provider& provider,
                                    std::chrono::milliseconds timeout) {
    const auto req = provider.models_request();
    if (provider.local() || !req) {
        co_return true;
    }
    const std::string request_id = "health-check";
    const ModelList got = co_await fetch_model_list(worker, rt, provider, *req, request_id, timeout);
    const bool ok = !got.error && got.status >= 200 && got.status < 300;
    if (got.error) {
        log::debug("health check of provider '{}': {}", provider.name(), got.error->message);
    } else if (!ok) {
        log::debug("health check of provider '{}': HTTP {}", provider.name(), got.status);
    }
    co_return ok;
}

net::awaitable<std::vector<std::string>> provider_models(Worker& worker, const Runtime& rt,
                                                         const Provider& provider, std::string request_id) {
    const auto cache_key = std::make_pair(rt.generation(), &provider);
    {
        std::lock_guard lock(models_cache().mutex);
        auto& entries = models_cache().entries;
        // Entries of replaced runtimes are dropped (their pointers may be reused).
        for (auto it = entries.begin(); it != entries.end();) {
            it = it->first.first != rt.generation() ? entries.erase(it) : std::next(it);
        }
        const auto it = entries.find(cache_key);
        if (it != entries.end() && Clock::now() < it->second.first) {
            co_return it->second.second;
        }
    }
    const auto req = provider.models_request();
    std::vector<std::string> ids;
    if (!req) {
        co_return ids;
    }
    if (provider.local()) {
        ids = provider.parse_models(provider.respond_locally(*req).body);
    } else {
        const Clock::duration timeout = provider.settings().first_byte_timeout;
        const ModelList got = co_await fetch_model_list(worker, rt, provider, *req, request_id, timeout);
        if (got.error) {
            log::warn("listing the models of provider '{}' failed: {}", provider.name(), got.error->message);
            co_return ids;  // not cached: the next request tries again
        }
        if (got.status == 200) {
            ids = provider.parse_models(got.body);
        } else {
            log::warn("listing the models of provider '{}' failed: HTTP {}", provider.name(), got.status);
        }
    }
    std::lock_guard lock(models_cache().mutex);
    models_cache().entries[cache_key] = {Clock::now() + std::chrono::minutes(1), ids};
    co_return ids;
}

net::awaitable<void> list_models(Worker& worker, ClientLink& link, RequestContext& ctx,
                                 std::string_view only) {
    const Runtime& rt = ctx.runtime;
    std::string body = "{\"object\":\"list\",\"data\":[";
    std::set<std::string> seen;
    bool first = true;
    bool found = false;
    auto add = [&](const std::string& id, const std::string& owner) {
        if (!seen.insert(id).second || (ctx.key != nullptr && !ctx.key->allows(id))) {
            return;
        }
        if (!only.empty() && id != only) {
            return;
        }
        found = true;
        std::string item = "{\"id\":";
        append_json_string(item, id);
        item += ",\"object\":\"model\",\"created\":0,\"owned_by\":";
        append_json_string(item, owner);
        item += '}';
        if (!only.empty()) {
            body = std::move(item);
            return;
        }
        if (!first) {
            body += ',';
        }
        first = false;
        body += item;
    };
    for (const Route& route : rt.routes()) {
        if (route.pattern.empty()) {
            continue;  // fallback-only: clients cannot ask for it
        }
        if (!route.glob) {
            add(route.pattern, route.targets.front().provider->name());
            continue;
        }
        for (const Target& t : route.targets) {
            const std::vector<std::string> ids =
                co_await provider_models(worker, ctx.runtime, *t.provider, ctx.request_id);
            for (const auto& id : ids) {
                if (route.matches(id)) {
                    add(id, t.provider->name());
                }
            }
        }
    }
    if (!only.empty()) {
        if (!found) {
            auto err = GatewayError::model_not_found(only);
            co_await send_error(link, ctx, err);
            co_return;
        }
    } else {
        body += "]}";
    }
    co_await send_body(link, ctx, 200, "application/json", body);
}

net::awaitable<void> health_loop(Worker& worker, const Provider* provider) {
    const std::shared_ptr<const Runtime> rt = worker.runtime();
    const std::shared_ptr<std::atomic<bool>> up = rt->provider_up(provider);
    const ProviderConfig* cfg = nullptr;
    for (const auto& pc : rt->config().providers) {
        if (pc.name == provider->name()) {
            cfg = &pc;
        }
    }
    unsigned passed = 0;
    unsigned failed = 0;
    net::steady_timer timer(worker.io());
    while (!worker.server().draining() && cfg != nullptr) {
        const bool ok = co_await check_provider(worker, *rt, *provider, cfg->health_timeout);
        passed = ok ? passed + 1 : 0;
        failed = ok ? 0 : failed + 1;
        const bool was_up = up->load();
        if (was_up && failed >= cfg->health_unhealthy_after) {
            up->store(false);
            log::warn("provider '{}' failed {} health checks in a row: its targets take no traffic",
                      provider->name(), failed);
        } else if (!was_up && passed >= cfg->health_healthy_after) {
            up->store(true);
            log::info("provider '{}' passed its health check: back in rotation", provider->name());
        }
        timer.expires_after(cfg->health_interval);
        co_await timer.async_wait(use_nothrow);
    }
}

}  // namespace sluice::proxy
