#include "providers/azure_provider.hpp"

#include "util/strings.hpp"
#include "util/url.hpp"

namespace sluice {

void AzureProvider::add_headers(UpstreamRequest& out) const {
    if (!cfg_.api_key.empty()) {
        out.headers.emplace_back("api-key", cfg_.api_key);
    }
    add_config_headers(out);
}

std::optional<GatewayError> AzureProvider::build_request(const ApiRequest& req,
                                                         std::string_view upstream_model,
                                                         UpstreamRequest& out) const {
    if (cfg_.api_version == "v1") {
        out.target = url_.path + "/openai/v1" + std::string(OpenAiWire::path(req.endpoint));
    } else {
        out.target = url_.path + "/openai/deployments/";
        if (!append_path_segment(out.target, upstream_model)) {
            return GatewayError::bad_request(
                "The model '" + std::string(upstream_model) + "' cannot name an Azure deployment.",
                "invalid_parameter", "model");
        }
        out.target += OpenAiWire::path(req.endpoint);
        out.target += "?api-version=";
        out.target += uri_encode_segment(cfg_.api_version);
    }
    out.headers.clear();
    add_headers(out);
    return wire_.build(req, upstream_model, out);
}

std::optional<UpstreamRequest> AzureProvider::models_request() const {
    if (cfg_.api_version != "v1") {
        return std::nullopt;
    }
    UpstreamRequest r = get_request(url_.path + "/openai/v1/models");
    add_headers(r);
    return r;
}

}  // namespace sluice
