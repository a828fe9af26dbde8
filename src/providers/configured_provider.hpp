#pragma once

#include <string>
#include <string_view>

#include <sluice/config.hpp>
#include <sluice/provider.hpp>

#include "util/url.hpp"

namespace sluice {

/// What every provider built from a `providers:` entry has, whatever its wire format: its name
/// and kind, the parsed base URL, the upstream settings (timeouts, limits, the secrets to scrub)
/// and whether its key is set. Nothing here knows a dialect: the OpenAI-compatible kinds are
/// composed with an OpenAiWire, the others with their own translators.
class ConfiguredProvider : public Provider {
public:
    explicit ConfiguredProvider(const ProviderConfig& cfg);

    const std::string& name() const noexcept override { return name_; }
    /// The configured kind ("openai", a preset such as "groq", "anthropic", ...).
    std::string_view kind() const noexcept override { return cfg_.kind; }
    bool enabled() const noexcept override { return enabled_; }
    const UpstreamSettings& settings() const noexcept override { return settings_; }
    bool drops_unsupported_params() const noexcept override { return cfg_.drop_unsupported_params; }
    /// The common reading of an error answer: its JSON body (error_from_json_body, 401/403 as
    /// 502 upstream_auth_error) and the standard Retry-After headers. Providers whose errors
    /// say more (Anthropic's types, Gemini's RetryInfo, Bedrock's error header) override it.
    ProviderError translate_error(int status, const HeaderView& headers, std::string_view body,
                                  std::int64_t now_unix) const override;

    const Url& url() const noexcept { return url_; }
    const ProviderConfig& config() const noexcept { return cfg_; }

protected:
    /// The configured `headers:` (after the provider's own credentials).
    void add_config_headers(UpstreamRequest& out) const;
    /// A GET of `target` (the models list), headers added by the caller.
    static UpstreamRequest get_request(std::string target);
    /// An error body as the error sluice answers with: scrubbed, 401/403 as 502
    /// upstream_auth_error (the provider refused sluice's credentials, not the client's), the
    /// type from the status when the provider gave none.
    GatewayError body_error(int status, std::string_view body) const;

    ProviderConfig cfg_;
    std::string name_;
    Url url_;
    UpstreamSettings settings_;
    bool enabled_ = true;
};

/// An error body in any of the common JSON shapes ({"error":{"message","type","code","param"}},
/// {"error":"..."}, vLLM's {"detail":...}, {"message":...}) as a GatewayError with `status`;
/// nothing is scrubbed yet, `type` may be empty.
GatewayError error_from_json_body(int status, std::string_view body);

/// Model ids of a `{"data":[{"id":...},...]}` list (OpenAI's and Anthropic's GET /models).
std::vector<std::string> model_ids_from_list(std::string_view body);

}  // namespace sluice
