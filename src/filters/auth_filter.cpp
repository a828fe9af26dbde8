#include "filters/builtin.hpp"
#include "runtime/runtime.hpp"
#include "util/strings.hpp"

namespace sluice {

namespace net = boost::asio;

std::string_view presented_key(const RequestContext& ctx) noexcept {
    const auto auth = ctx.header("authorization");
    if (!auth.empty()) {
        if (auth.size() > 7 && iequals(auth.substr(0, 7), "bearer ")) {
            return trim_ows(auth.substr(7));
        }
        return {};
    }
    if (const auto k = ctx.header("x-api-key"); !k.empty()) {
        return k;
    }
    return ctx.header("api-key");
}

net::awaitable<RequestVerdict> AuthFilter::on_request(RequestContext& ctx) const {
    if (!ctx.runtime.auth_enabled()) {
        co_return RequestVerdict::proceed();
    }
    const auto key = presented_key(ctx);
    if (key.empty()) {
        co_return RequestVerdict::reject(GatewayError::unauthorized(
            "Missing API key. Send it as 'Authorization: Bearer <key>' (or x-api-key / api-key)."));
    }
    const KeyEntry* entry = ctx.runtime.authenticate(key, ctx.connection);
    if (entry == nullptr) {
        co_return RequestVerdict::reject(GatewayError::unauthorized("Invalid API key."));
    }
    ctx.key = entry;
    co_return RequestVerdict::proceed();
}

}  // namespace sluice
