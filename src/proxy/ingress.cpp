#include "proxy/ingress.hpp"

#include "api/api_request.hpp"
#include "json/json_dom.hpp"
#include "providers/messages_translate.hpp"
#include "providers/openai_wire.hpp"

namespace sluice::proxy {

std::optional<GatewayError> ingress(const RequestContext& ctx, const Provider& provider,
                                    std::string_view upstream_model, ProviderRequest& out) {
    out.api = &ctx.api;
    out.from_messages = false;
    if (ctx.api.endpoint != Endpoint::messages || provider.takes_messages()) {
        return std::nullopt;
    }
    nlohmann::json in;
    if (!json::parse_untrusted(ctx.api.body, in)) {
        return GatewayError::invalid_json("The request body is not valid JSON.");
    }
    nlohmann::json chat;
    if (auto err = messages_to_chat_request(in, upstream_model, chat, provider.drops_unsupported_params())) {
        return err;
    }
    if (auto err = parse_api_request(Endpoint::chat_completions, json::to_text(chat), out.translated)) {
        return err;  // (not expected: the translation writes a valid chat request)
    }
    out.api = &out.translated;
    out.from_messages = true;
    return std::nullopt;
}

std::optional<GatewayError> egress(const RequestContext& ctx, const Provider& provider,
                                   const ProviderRequest& preq, std::string& body, Usage& usage) {
    if (!preq.from_messages) {
        return std::nullopt;
    }
    nlohmann::json chat;
    if (!json::parse_untrusted(body, chat) || !chat.is_object()) {
        return GatewayError::upstream_error(
            "Provider '" + provider.name() + "' sent an answer that is not a JSON object.",
            "upstream_invalid_response");
    }
    nlohmann::json messages;
    if (auto e = chat_to_messages_response(chat, ctx.api.model, provider.name(), messages, usage)) {
        return e;
    }
    body = json::to_text(messages);
    return std::nullopt;
}

}  // namespace sluice::proxy
