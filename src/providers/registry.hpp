#pragma once

// The provider kinds sluice knows, in one table: each kind's config rules (which keys apply,
// defaults, what it requires) and its factory. The config loader and the runtime read this table
// instead of branching on kind names; a new provider kind is one entry here and its own files.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sluice/config.hpp>
#include <sluice/provider.hpp>

namespace sluice {

/// Which provider keys the YAML node had (the loader fills it; the rules read it).
struct ProviderKeysPresent {
    bool api_key = false;
    bool api_version = false;
    bool region = false;
    bool base_url = false;
    bool default_max_tokens = false;
    bool health_check = false;
    bool mock_fields = false;  ///< models or embedding_dimensions
};

/// A config problem a kind's rules found: `key` is the provider key it is about ("" = the
/// provider itself), `present` whether that key is in the YAML (else the problem is that it is
/// missing, located at the provider), `message` what is wrong.
struct ProviderConfigIssue {
    std::string key;
    bool present = true;
    std::string message;
};

struct ProviderKind {
    std::string_view name;
    bool network = true;                ///< false: answers in-process (mock), no base_url
    std::string_view default_base_url;  ///< used when base_url is not set ("" = none)
    std::string_view base_url_example;  ///< for the "missing base_url" message
    bool needs_api_key = false;         ///< an api_key key is required
    bool takes_api_version = false;     ///< Azure's api_version applies
    bool takes_region = false;          ///< Bedrock's region applies (and api_key does not)
    bool takes_default_max_tokens = false;
    bool lists_models = true;  ///< has a model-list call (health checks need one)
    /// Kind-specific defaults and checks beyond the flags (may be null).
    void (*rules)(ProviderConfig& pc, const ProviderKeysPresent& keys,
                  std::vector<ProviderConfigIssue>& out) = nullptr;
    std::unique_ptr<Provider> (*make)(const ProviderConfig& pc) = nullptr;
    /// Why a provider of this kind is disabled when its credentials resolve empty.
    std::string_view disabled_reason = "its api_key is empty (set its variable to enable it)";
};

/// The kind named `name` (a core kind, or an OpenAI-compatible catalogue preset), or null.
const ProviderKind* find_provider_kind(std::string_view name);
/// "openai, anthropic, ..., groq, ...": every kind, for error messages.
std::string provider_kind_names();
/// Applies the kind's rules to a decoded provider config: defaults, then every problem found.
std::vector<ProviderConfigIssue> check_provider_config(const ProviderKind& kind, ProviderConfig& pc,
                                                       const ProviderKeysPresent& keys);

}  // namespace sluice
