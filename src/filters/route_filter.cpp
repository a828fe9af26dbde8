#include "api/api_request.hpp"
#include "filters/builtin.hpp"
#include "runtime/runtime.hpp"

namespace sluice {

namespace net = boost::asio;

net::awaitable<RequestVerdict> RouteFilter::on_request(RequestContext& ctx) const {
    if (ctx.endpoint == Endpoint::models) {
        co_return RequestVerdict::proceed();
    }
    if (auto err = parse_api_request(ctx.endpoint, std::move(ctx.api.body), ctx.api)) {
        co_return RequestVerdict::reject(std::move(*err));
    }
    if (anthropic_format(ctx.endpoint)) {
        // Claude Code and the Anthropic SDKs pin the API version and opt into betas by header.
        for (const char* name : {"anthropic-version", "anthropic-beta"}) {
            if (const auto v = ctx.header(name); !v.empty()) {
                ctx.api.dialect_headers.emplace_back(name, std::string(v));
            }
        }
    }
    if (ctx.key != nullptr && !ctx.key->allows(ctx.api.model)) {
        auto e = GatewayError::forbidden("The key '" + ctx.key->name + "' may not use the model '" +
                                         ctx.api.model + "'.");
        e.param = "model";
        co_return RequestVerdict::reject(std::move(e));
    }
    const Route* route = ctx.runtime.match(ctx.api.model);
    if (route == nullptr) {
        co_return RequestVerdict::reject(GatewayError::model_not_found(ctx.api.model));
    }
    ctx.route = route;  // the forwarder picks the target, attempt by attempt
    co_return RequestVerdict::proceed();
}

}  // namespace sluice
