#include "stages/stages.hpp"

#include "api/api_request.hpp"
#include "http/http_parser.hpp"
#include "runtime/runtime.hpp"
#include "util/strings.hpp"

namespace sluice {

namespace net = boost::asio;

std::vector<std::unique_ptr<Stage>> make_stages() {
    std::vector<std::unique_ptr<Stage>> stages;
    stages.push_back(std::make_unique<AuthStage>());
    stages.push_back(std::make_unique<RateLimitStage>());
    stages.push_back(std::make_unique<RoutingStage>());
    stages.push_back(std::make_unique<GuardrailStage>());
    return stages;
}

std::string_view presented_key(const RequestContext& ctx) noexcept {
    const auto auth = ctx.head.find("authorization");
    if (!auth.empty()) {
        if (auth.size() > 7 && iequals(auth.substr(0, 7), "bearer ")) {
            return trim_ows(auth.substr(7));
        }
        return {};
    }
    if (const auto k = ctx.head.find("x-api-key"); !k.empty()) {
        return k;
    }
    return ctx.head.find("api-key");
}

net::awaitable<StageResult> AuthStage::on_request(RequestContext& ctx) const {
    if (!ctx.runtime.auth_enabled()) {
        co_return StageResult::next();
    }
    const auto key = presented_key(ctx);
    if (key.empty()) {
        co_return StageResult::respond(GatewayError::unauthorized(
            "Missing API key. Send it as 'Authorization: Bearer <key>' (or x-api-key / api-key)."));
    }
    const KeyEntry* entry = ctx.runtime.authenticate(key);
    if (entry == nullptr) {
        co_return StageResult::respond(GatewayError::unauthorized("Invalid API key."));
    }
    ctx.key = entry;
    co_return StageResult::next();
}

net::awaitable<StageResult> RateLimitStage::on_request(RequestContext& /*ctx*/) const {
    co_return StageResult::next();
}

net::awaitable<StageResult> RoutingStage::on_request(RequestContext& ctx) const {
    if (ctx.endpoint == Endpoint::models) {
        co_return StageResult::next();
    }
    if (auto err = parse_api_request(ctx.endpoint, std::move(ctx.api.body), ctx.api)) {
        co_return StageResult::respond(std::move(*err));
    }
    if (anthropic_format(ctx.endpoint)) {
        // Claude Code and the Anthropic SDKs pin the API version and opt into betas by header.
        for (const char* name : {"anthropic-version", "anthropic-beta"}) {
            if (const auto v = ctx.head.find(name); !v.empty()) {
                ctx.api.dialect_headers.emplace_back(name, std::string(v));
            }
        }
    }
    if (ctx.key != nullptr && !ctx.key->allows(ctx.api.model)) {
        auto e = GatewayError::forbidden("The key '" + ctx.key->name + "' may not use the model '" +
                                         ctx.api.model + "'.");
        e.param = "model";
        co_return StageResult::respond(std::move(e));
    }
    const Route* route = ctx.runtime.match(ctx.api.model);
    if (route == nullptr) {
        co_return StageResult::respond(GatewayError::model_not_found(ctx.api.model));
    }
    ctx.route = route;  // the forwarder picks the target, attempt by attempt
    co_return StageResult::next();
}

net::awaitable<StageResult> GuardrailStage::on_request(RequestContext& /*ctx*/) const {
    co_return StageResult::next();
}

}  // namespace sluice
