#include "providers/registry.hpp"

#include <cctype>
#include <cstdlib>

#include "providers/anthropic_provider.hpp"
#include "providers/azure_provider.hpp"
#include "providers/bedrock_provider.hpp"
#include "providers/gemini_provider.hpp"
#include "providers/mock_provider.hpp"
#include "providers/openai_provider.hpp"
#include "util/url.hpp"

namespace sluice {

namespace {

void azure_rules(ProviderConfig& pc, const ProviderKeysPresent& /*keys*/,
                 std::vector<ProviderConfigIssue>& out) {
    if (pc.api_version.empty()) {
        pc.api_version = "2024-10-21";
    }
    if (pc.api_version != "v1" &&
        (pc.api_version.size() < 10 || !std::isdigit(static_cast<unsigned char>(pc.api_version[0])))) {
        out.push_back({"api_version", true,
                       "expected a dated version such as 2024-10-21 or v1, got '" + pc.api_version + "'"});
    }
}

void bedrock_rules(ProviderConfig& pc, const ProviderKeysPresent& keys,
                   std::vector<ProviderConfigIssue>& out) {
    if (pc.region.empty()) {
        out.push_back({"region", false, "kind bedrock needs a region (e.g. us-east-1)"});
    } else if (pc.base_url.empty()) {
        pc.base_url = "https://bedrock-runtime." + pc.region + ".amazonaws.com";
    }
    if (keys.api_key) {
        out.push_back({"api_key", true,
                       "kind bedrock signs with AWS credentials from the environment "
                       "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), not an api_key"});
    }
}

std::unique_ptr<Provider> make_openai(const ProviderConfig& pc) {
    return std::make_unique<OpenAiProvider>(pc);
}
std::unique_ptr<Provider> make_azure(const ProviderConfig& pc) {
    return std::make_unique<AzureProvider>(pc);
}
std::unique_ptr<Provider> make_anthropic(const ProviderConfig& pc) {
    return std::make_unique<AnthropicProvider>(pc);
}
std::unique_ptr<Provider> make_gemini(const ProviderConfig& pc) {
    return std::make_unique<GeminiProvider>(pc);
}
std::unique_ptr<Provider> make_mock(const ProviderConfig& pc) {
    return std::make_unique<MockProvider>(pc);
}
std::unique_ptr<Provider> make_bedrock(const ProviderConfig& pc) {
    // Credentials come from the environment, as the AWS SDKs read them.
    auto env = [](const char* name) {
        const char* v = std::getenv(name);  // NOLINT(concurrency-mt-unsafe): start-up only
        return std::string(v == nullptr ? "" : v);
    };
    return std::make_unique<BedrockProvider>(
        pc,
        aws::Credentials{env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY"), env("AWS_SESSION_TOKEN")});
}

const std::vector<ProviderKind>& core_kinds() {
    static const std::vector<ProviderKind> kinds = [] {
        std::vector<ProviderKind> k(6);
        k[0].name = "openai";
        k[0].make = make_openai;
        k[1].name = "anthropic";
        k[1].default_base_url = "https://api.anthropic.com";
        k[1].needs_api_key = true;
        k[1].takes_default_max_tokens = true;
        k[1].make = make_anthropic;
        k[2].name = "gemini";
        k[2].default_base_url = "https://generativelanguage.googleapis.com";
        k[2].needs_api_key = true;
        k[2].make = make_gemini;
        k[3].name = "bedrock";
        k[3].takes_region = true;
        k[3].lists_models = false;
        k[3].rules = bedrock_rules;
        k[3].make = make_bedrock;
        k[3].disabled_reason = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set";
        k[4].name = "azure";
        k[4].base_url_example = "https://my-resource.openai.azure.com";
        k[4].takes_api_version = true;
        k[4].rules = azure_rules;
        k[4].make = make_azure;
        k[5].name = "mock";
        k[5].network = false;
        k[5].make = make_mock;
        return k;
    }();
    return kinds;
}

/// The catalogue presets as kinds: OpenAI-compatible, with their base URL.
const std::vector<ProviderKind>& preset_kinds() {
    static const std::vector<ProviderKind> kinds = [] {
        std::vector<ProviderKind> k;
        for (const auto& p : provider_presets()) {
            ProviderKind pk;
            pk.name = p.kind;
            pk.default_base_url = p.base_url;
            pk.needs_api_key = p.needs_key;
            pk.make = make_openai;
            k.push_back(pk);
        }
        return k;
    }();
    return kinds;
}

std::string upper(std::string_view s) {
    std::string out;
    for (const char c : s) {
        out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    }
    return out;
}

}  // namespace

const ProviderKind* find_provider_kind(std::string_view name) {
    for (const auto* list : {&core_kinds(), &preset_kinds()}) {
        for (const auto& k : *list) {
            if (k.name == name) {
                return &k;
            }
        }
    }
    return nullptr;
}

std::string provider_kind_names() {
    std::string names = "openai, anthropic, gemini, bedrock, azure, mock";
    for (const auto& k : preset_kinds()) {
        names += ", ";
        names += k.name;
    }
    return names;
}

std::vector<ProviderConfigIssue> check_provider_config(const ProviderKind& kind, ProviderConfig& pc,
                                                       const ProviderKeysPresent& keys) {
    std::vector<ProviderConfigIssue> out;
    if (keys.default_max_tokens && !kind.takes_default_max_tokens) {
        out.push_back({"default_max_tokens", true, "applies to kind: anthropic only"});
    }
    if (keys.health_check && !kind.lists_models) {
        out.push_back({"health_check", true,
                       "not available for kind " + std::string(kind.name) +
                           " (it has no model-list call sluice can sign)"});
    }
    if (pc.base_url.empty() && !kind.default_base_url.empty()) {
        pc.base_url = std::string(kind.default_base_url);
    }
    if (kind.needs_api_key && !keys.api_key) {
        out.push_back({"api_key", false,
                       "kind " + std::string(kind.name) + " needs an api_key (e.g. \"${" + upper(kind.name) +
                           "_API_KEY}\")"});
    }
    if (!kind.takes_api_version && keys.api_version) {
        out.push_back({"api_version", true, "applies to kind: azure only"});
    }
    if (!kind.takes_region && keys.region) {
        out.push_back({"region", true, "applies to kind: bedrock only"});
    }
    if (kind.rules != nullptr) {
        kind.rules(pc, keys, out);
    }
    if (kind.network && (!kind.takes_region || !pc.base_url.empty())) {
        if (pc.base_url.empty()) {
            out.push_back({"base_url", false,
                           "missing (e.g. " +
                               std::string(kind.base_url_example.empty() ? "https://api.openai.com/v1"
                                                                         : kind.base_url_example) +
                               ")"});
        } else if (!parse_url(pc.base_url)) {
            out.push_back(
                {"base_url", true, "expected an http:// or https:// URL, got '" + pc.base_url + "'"});
        }
        if (keys.mock_fields) {
            out.push_back({"", false, "models and embedding_dimensions apply to kind: mock only"});
        }
    }
    if (!kind.network && keys.base_url) {
        out.push_back({"base_url", true, "a mock provider has no base_url"});
    }
    return out;
}

}  // namespace sluice
