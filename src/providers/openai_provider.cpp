#include "providers/openai_provider.hpp"

namespace sluice {

void OpenAiProvider::add_headers(UpstreamRequest& out) const {
    if (!cfg_.api_key.empty()) {
        out.headers.emplace_back("Authorization", "Bearer " + cfg_.api_key);
    }
    add_config_headers(out);
}

std::optional<GatewayError> OpenAiProvider::build_request(const ApiRequest& req,
                                                          std::string_view upstream_model,
                                                          UpstreamRequest& out) const {
    out.target = url_.path;
    out.target += OpenAiWire::path(req.endpoint);
    out.headers.clear();
    add_headers(out);
    return wire_.build(req, upstream_model, out);
}

std::optional<UpstreamRequest> OpenAiProvider::models_request() const {
    UpstreamRequest r = get_request(url_.path + "/models");
    add_headers(r);
    return r;
}

}  // namespace sluice
