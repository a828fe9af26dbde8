#pragma once

// The Anthropic front door as an adapter: a /v1/messages request goes to a provider that does
// not take Messages requests as the canonical (OpenAI chat) request, translated once per attempt
// (the target's model and the provider's drop_unsupported_params shape it), and its non-stream
// answer comes back as a Messages answer. Streams need no step here: the client's encoder writes
// Anthropic events from the provider's deltas. A provider of the client's dialect (Anthropic)
// gets the client's request as it came. Providers never branch on the front door.

#include <optional>
#include <string>
#include <string_view>

#include <sluice/error.hpp>
#include <sluice/provider.hpp>
#include <sluice/request_context.hpp>

namespace sluice::proxy {

/// The request as one provider takes it.
struct ProviderRequest {
    const ApiRequest* api = nullptr;  ///< the client's request, or `translated`
    ApiRequest translated;
    bool from_messages = false;  ///< a Messages request sent as chat: the answer goes back as Messages

    ProviderRequest() = default;
    ProviderRequest(const ProviderRequest&) = delete;  // `api` may point into it
    ProviderRequest& operator=(const ProviderRequest&) = delete;
};

/// Fills `out` for `provider` and `upstream_model`; a 400 naming the field when the request
/// cannot be expressed for it.
std::optional<GatewayError> ingress(const RequestContext& ctx, const Provider& provider,
                                    std::string_view upstream_model, ProviderRequest& out);

/// The provider's translated non-stream answer (OpenAI's shape) as the client's: a Messages
/// answer for a request that came through the front door. `usage` is read again from it.
std::optional<GatewayError> egress(const RequestContext& ctx, const Provider& provider,
                                   const ProviderRequest& preq, std::string& body, Usage& usage);

}  // namespace sluice::proxy
