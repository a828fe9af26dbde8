#pragma once

#include <sluice/config.hpp>
#include <sluice/provider.hpp>

#include "providers/configured_provider.hpp"
#include "providers/openai_wire.hpp"

namespace sluice {

/// Azure OpenAI: OpenAI's wire format, with deployments addressed by URL
/// (`/openai/deployments/{deployment}/...?api-version=`) or the v1 API (`/openai/v1/...`, the
/// deployment in "model"), and the key in `api-key`.
class AzureProvider : public ConfiguredProvider {
public:
    explicit AzureProvider(const ProviderConfig& cfg) : ConfiguredProvider(cfg), wire_(cfg.name) {}

    std::optional<GatewayError> build_request(const ApiRequest& req, std::string_view upstream_model,
                                              UpstreamRequest& out) const override;
    /// v1 lists models; the dated API has no list of deployments, so glob routes list nothing.
    std::optional<UpstreamRequest> models_request() const override;
    std::vector<std::string> parse_models(std::string_view body) const override {
        return model_ids_from_list(body);
    }
    std::unique_ptr<StreamRelay> make_stream_relay(const ApiRequest& req, StreamOutput out,
                                                   std::int64_t /*now*/) const override {
        return OpenAiWire::stream_relay(req, std::move(out));
    }
    std::optional<GatewayError> translate_response(const ApiRequest& /*req*/, std::string& body,
                                                   std::int64_t /*now_unix*/, Answer& answer) const override {
        return wire_.read_answer(body, answer);
    }

private:
    void add_headers(UpstreamRequest& out) const;

    OpenAiWire wire_;
};

}  // namespace sluice
