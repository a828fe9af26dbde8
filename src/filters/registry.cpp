#include "filters/registry.hpp"

#include "filters/builtin.hpp"

namespace sluice {

namespace {

/// One kind of filter: its name, and a factory that returns nullptr when the config does not
/// switch it on. A capability adds its row here, in the position its hooks must run.
struct FilterKind {
    const char* name;
    std::shared_ptr<const Filter> (*make)(const GatewayConfig& cfg, const Services& services);
};

std::shared_ptr<const Filter> make_auth(const GatewayConfig& /*cfg*/, const Services& /*s*/) {
    return std::make_shared<AuthFilter>();  // passes every request when no key is configured
}

std::shared_ptr<const Filter> make_route(const GatewayConfig& /*cfg*/, const Services& /*s*/) {
    return std::make_shared<RouteFilter>();
}

constexpr FilterKind kFilterKinds[] = {
    {"auth", make_auth},
    {"route", make_route},
};

}  // namespace

std::vector<std::shared_ptr<const Filter>> build_filters(const GatewayConfig& cfg, const Services& services,
                                                         std::vector<std::shared_ptr<const Filter>> extra) {
    std::vector<std::shared_ptr<const Filter>> out;
    for (const FilterKind& kind : kFilterKinds) {
        if (auto f = kind.make(cfg, services)) {
            out.push_back(std::move(f));
        }
    }
    for (auto& f : extra) {
        out.push_back(std::move(f));
    }
    out.push_back(std::make_shared<AccessLogFilter>());
    return out;
}

}  // namespace sluice
