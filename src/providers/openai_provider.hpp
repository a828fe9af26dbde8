#pragma once

#include <sluice/config.hpp>

#include <sluice/delta.hpp>
#include <sluice/provider.hpp>
#include "json/json_scan.hpp"

#include "util/url.hpp"

namespace sluice {

/// Any server that speaks OpenAI's API (OpenAI, vLLM, Ollama, Groq, Together, Mistral, DeepSeek,
/// OpenRouter, llama.cpp). The client's JSON is forwarded byte for byte except for the splices
/// sluice needs: the upstream model name and `stream_options.include_usage` on streams.
class OpenAiProvider : public Provider {
public:
    explicit OpenAiProvider(const ProviderConfig& cfg);

    const std::string& name() const noexcept override { return name_; }
    /// "openai", or the catalogue preset it was configured as ("groq", ...).
    std::string_view kind() const noexcept override { return cfg_.kind; }
    bool enabled() const noexcept override { return enabled_; }
    const UpstreamSettings& settings() const noexcept override { return settings_; }
    bool drops_unsupported_params() const noexcept override { return cfg_.drop_unsupported_params; }

    std::optional<GatewayError> build_request(const ApiRequest& req, std::string_view upstream_model,
                                              UpstreamRequest& out) const override;
    std::optional<UpstreamRequest> models_request() const override;
    std::vector<std::string> parse_models(std::string_view body) const override;
    std::unique_ptr<StreamRelay> make_stream_relay(const ApiRequest& req, StreamOutput out,
                                                   std::int64_t now) const override;
    Usage parse_usage(std::string_view body) const override;
    std::optional<GatewayError> translate_response(const ApiRequest& req, std::string& body,
                                                   Usage& usage) const override;
    ProviderError translate_error(int status, const HeaderView& headers, std::string_view body,
                                  std::int64_t now_unix) const override;

    const Url& url() const noexcept { return url_; }
    const ProviderConfig& config() const noexcept { return cfg_; }

protected:
    /// The provider's credentials and configured extra headers.
    virtual void add_headers(UpstreamRequest& out) const;
    /// The upstream body: the client's bytes with splices.
    std::optional<GatewayError> upstream_body(const ApiRequest& req, std::string_view upstream_model,
                                              std::string& body) const;
    /// An OpenAI-shaped error body as the error sluice answers with (401/403 -> 502
    /// upstream_auth_error; type from the status when the provider gave none).
    GatewayError body_error(int status, std::string_view body) const;

    ProviderConfig cfg_;
    std::string name_;
    Url url_;
    UpstreamSettings settings_;
    bool enabled_ = true;
};

/// Azure OpenAI: deployments addressed by URL (`/openai/deployments/{deployment}/...?api-version=`)
/// or the v1 API (`/openai/v1/...`, the deployment in "model"), the key in `api-key`.
class AzureProvider : public OpenAiProvider {
public:
    explicit AzureProvider(const ProviderConfig& cfg) : OpenAiProvider(cfg) {}
    std::optional<GatewayError> build_request(const ApiRequest& req, std::string_view upstream_model,
                                              UpstreamRequest& out) const override;
    /// v1 lists models; the dated API has no list of deployments, so glob routes list nothing.
    std::optional<UpstreamRequest> models_request() const override;

protected:
    void add_headers(UpstreamRequest& out) const override;
};

/// The request body as it goes upstream: the client's bytes with the model value replaced (when
/// the target names another model) and, for streams, `stream_options.include_usage` set to true.
std::string rewrite_openai_body(const ApiRequest& req, std::string_view upstream_model);

/// An OpenAI-shaped error body ({"error":{"message","type","code","param"}}, or vLLM's
/// {"detail":...}) as a GatewayError with `status`; nothing is scrubbed yet, `type` may be empty.
GatewayError openai_error_from_body(int status, std::string_view body);

/// The client's body with only the model value replaced (when it differs).
std::string splice_model(const ApiRequest& req, std::string_view upstream_model);

/// The OpenAI stream relay: passes events through, reads usage, and when the client did not ask
/// for usage hides what sluice asked for on its behalf (the usage-only chunk and "usage":null).
class OpenAiStreamRelay : public StreamRelay {
public:
    explicit OpenAiStreamRelay(bool client_wants_usage) : client_wants_usage_(client_wants_usage) {}
    bool on_event(const sse::Event& ev, std::string& out) override;
    bool takes_plain_data() const override { return true; }
    std::span<const std::string_view> plain_data_markers() const override;
    bool on_plain_data(std::string_view data, std::string_view raw, std::string& out) override;
    bool finished() const override { return done_; }
    Usage usage() const override { return usage_; }

private:
    bool client_wants_usage_;
    bool done_ = false;
    Usage usage_;
    std::vector<json::Member> top_;  ///< reused for every event
};

}  // namespace sluice
