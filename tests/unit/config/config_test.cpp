#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <sluice/config.hpp>

#include "runtime/runtime.hpp"

namespace sluice {
namespace {

namespace fs = std::filesystem;

std::string read(const fs::path& p) {
    std::ifstream in(p);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(Config, ShippedConfigsAreValid) {
    std::vector<fs::path> files = {fs::path(SLUICE_TEST_DATA) / "../../config/sluice.yaml"};
    for (const auto& dir : {fs::path(SLUICE_TEST_DATA) / "config/valid",
                            fs::path(SLUICE_TEST_DATA) / "../../config/examples"}) {
        if (fs::exists(dir)) {
            for (const auto& e : fs::directory_iterator(dir)) {
                files.push_back(e.path());
            }
        }
    }
    for (const auto& f : files) {
        try {
            auto cfg = load_config_file(f.string());
            auto rt = Runtime::build(std::move(cfg));
            EXPECT_NE(rt, nullptr);
        } catch (const ConfigError& e) {
            ADD_FAILURE() << f << ": " << e.what();
        }
    }
}

TEST(Config, InvalidConfigsFailWithTheirMessage) {
    int count = 0;
    for (const auto& e : fs::directory_iterator(fs::path(SLUICE_TEST_DATA) / "config/invalid")) {
        const std::string text = read(e.path());
        const std::string marker = "# expect: ";
        ASSERT_EQ(text.rfind(marker, 0), 0u) << e.path() << " lacks its '# expect:' line";
        const std::string expected = text.substr(marker.size(), text.find('\n') - marker.size());
        try {
            load_config_file(e.path().string());
            ADD_FAILURE() << e.path() << " loaded but should fail with: " << expected;
        } catch (const ConfigError& err) {
            EXPECT_NE(std::string(err.what()).find(expected), std::string::npos)
                << e.path() << "\n  expected: " << expected << "\n  got: " << err.what();
        }
        ++count;
    }
    EXPECT_GE(count, 10);
}

TEST(Config, ReportsEveryErrorAtOnce) {
    try {
        load_config_text("server:\n  threads: x\n  listen: nope\nlog:\n  format: xml\n");
        FAIL();
    } catch (const ConfigError& e) {
        EXPECT_EQ(e.errors().size(), 3u) << e.what();
    }
}

TEST(Config, SubstitutesVariablesAndDefaults) {
    const std::map<std::string, std::string> env = {{"KEY", "sk-live"}, {"EMPTY", ""}};
    const auto cfg = load_config_text(
        "providers:\n"
        "  a: {kind: openai, base_url: \"http://h:1\", api_key: \"${KEY}\"}\n"
        "  b: {kind: openai, base_url: \"http://${HOST:-localhost}:2\", api_key: \"${EMPTY:-fallback}\"}\n"
        "  c: {kind: openai, base_url: \"http://h:3\", api_key: \"${MISSING}\"}\n"
        "  d: {kind: openai, base_url: \"http://h:4\", api_key: \"$${NOT_A_VAR}\"}\n",
        &env);
    EXPECT_EQ(cfg.providers[0].api_key, "sk-live");
    EXPECT_EQ(cfg.providers[1].base_url, "http://localhost:2");
    EXPECT_EQ(cfg.providers[1].api_key, "fallback");
    EXPECT_EQ(cfg.providers[2].api_key, "");
    EXPECT_TRUE(cfg.providers[2].api_key_set);
    EXPECT_EQ(cfg.providers[3].api_key, "${NOT_A_VAR}");
}

TEST(Config, CataloguePresetsFillTheBaseUrl) {
    const std::map<std::string, std::string> env = {{"GROQ_API_KEY", "gsk_x"}};
    const auto cfg = load_config_text(
        "providers:\n"
        "  groq: {kind: groq, api_key: \"${GROQ_API_KEY}\"}\n"
        "  local: {kind: ollama}\n"
        "  mine: {kind: vllm, base_url: \"http://10.0.0.5:9000/v1\"}\n"
        "  az: {kind: azure, base_url: \"https://r.openai.azure.com\", api_key: k}\n",
        &env);
    EXPECT_EQ(cfg.providers[0].base_url, "https://api.groq.com/openai/v1");
    EXPECT_EQ(cfg.providers[1].base_url, "http://127.0.0.1:11434/v1");
    EXPECT_EQ(cfg.providers[2].base_url, "http://10.0.0.5:9000/v1");
    EXPECT_EQ(cfg.providers[3].api_version, "2024-10-21");
    auto rt = Runtime::build(cfg);
    EXPECT_EQ(rt->provider("groq")->kind(), "groq");
    EXPECT_EQ(rt->provider("az")->kind(), "azure");
}

/// The config `yaml` is refused with an error that contains `message`.
void expect_error(const std::string& yaml, const std::string& message) {
    const std::map<std::string, std::string> env;
    try {
        load_config_text(yaml, &env);
        ADD_FAILURE() << "loaded: " << yaml;
    } catch (const ConfigError& e) {
        EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
    }
}

TEST(Config, PresetAndAzureMistakesAreErrors) {
    expect_error("providers:\n  g: {kind: groq}\n", "needs an api_key (e.g. \"${GROQ_API_KEY}\")");
    expect_error("providers:\n  a: {kind: azure, api_key: k}\n", "my-resource.openai.azure.com");
    expect_error("providers:\n  a: {kind: azure, base_url: \"https://r\", api_version: latest}\n",
                 "expected a dated version");
    expect_error("providers:\n  o: {kind: openai, base_url: \"https://x\", api_version: v1}\n",
                 "applies to kind: azure only");
    expect_error("providers:\n  o: {kind: vertex}\n",
                 "expected one of: openai, anthropic, gemini, bedrock, azure, mock, groq");
}

TEST(Config, EachProviderKindsRulesComeFromTheKindTableWithPathAndLine) {
    const std::map<std::string, std::string> env;
    expect_error(
        "providers:\n  c: {kind: anthropic}\n",
        "providers.c.api_key (line 2): kind anthropic needs an api_key (e.g. \"${ANTHROPIC_API_KEY}\")");
    expect_error("providers:\n  g: {kind: gemini}\n", "kind gemini needs an api_key");
    expect_error("providers:\n  b: {kind: bedrock}\n",
                 "providers.b.region (line 2): kind bedrock needs a region");
    expect_error("providers:\n  b: {kind: bedrock, region: us-east-1, api_key: k}\n",
                 "providers.b.api_key (line 2): kind bedrock signs with AWS credentials");
    expect_error(
        "providers:\n  b:\n    kind: bedrock\n    region: us-east-1\n    health_check: {interval: 5s}\n",
        "providers.b.health_check (line 5): not available for kind bedrock");
    expect_error(
        "providers:\n  o:\n    kind: openai\n    base_url: \"https://x\"\n    default_max_tokens: 9\n",
        "providers.o.default_max_tokens (line 5): applies to kind: anthropic only");
    expect_error("providers:\n  o:\n    kind: openai\n    base_url: \"https://x\"\n    region: eu\n",
                 "providers.o.region (line 5): applies to kind: bedrock only");
    expect_error("providers:\n  o: {kind: openai}\n",
                 "providers.o.base_url (line 2): missing (e.g. https://api.openai.com/v1)");
    expect_error("providers:\n  o: {kind: openai, base_url: \"ftp://x\"}\n",
                 "expected an http:// or https:// URL");
    expect_error("providers:\n  o: {kind: openai, base_url: \"https://x\", models: [a]}\n",
                 "models and embedding_dimensions apply to kind: mock only");
    expect_error("providers:\n  m: {kind: mock, base_url: \"https://x\"}\n",
                 "a mock provider has no base_url");
    // Defaults come from the table too.
    const auto cfg = load_config_text(
        "providers:\n  c: {kind: anthropic, api_key: k}\n  g: {kind: gemini, api_key: k}\n"
        "  b: {kind: bedrock, region: eu-west-1}\n  q: {kind: ollama}\n",
        &env);
    EXPECT_EQ(cfg.providers[0].base_url, "https://api.anthropic.com");
    EXPECT_EQ(cfg.providers[1].base_url, "https://generativelanguage.googleapis.com");
    EXPECT_EQ(cfg.providers[2].base_url, "https://bedrock-runtime.eu-west-1.amazonaws.com");
    EXPECT_EQ(cfg.providers[3].base_url, "http://127.0.0.1:11434/v1");
}

TEST(Config, ParsesDurations) {
    EXPECT_EQ(parse_duration("500ms")->count(), 500);
    EXPECT_EQ(parse_duration("10s")->count(), 10000);
    EXPECT_EQ(parse_duration("5m")->count(), 300000);
    EXPECT_EQ(parse_duration("1h")->count(), 3600000);
    EXPECT_EQ(parse_duration("0")->count(), 0);
    for (const char* bad : {"", "10", "1.5s", "-1s", "10 s", "s", "10d"}) {
        EXPECT_FALSE(parse_duration(bad)) << bad;
    }
}

TEST(Config, DisabledProvidersDropTheirRoutes) {
    const std::map<std::string, std::string> env;
    auto cfg = load_config_text(
        "providers:\n"
        "  mock: {kind: mock}\n"
        "  paid: {kind: openai, base_url: \"https://x.example\", api_key: \"${UNSET}\"}\n"
        "routes:\n"
        "  - model: \"gpt-*\"\n"
        "    targets: [{provider: paid}]\n"
        "  - model: \"both\"\n"
        "    targets: [{provider: paid}, {provider: mock}]\n",
        &env);
    auto rt = Runtime::build(std::move(cfg));
    EXPECT_EQ(rt->match("gpt-4o"), nullptr);
    ASSERT_NE(rt->match("both"), nullptr);
    EXPECT_EQ(rt->match("both")->targets.size(), 1u);
    EXPECT_FALSE(rt->warnings().empty());
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {
TEST(Config, DecodesRoutingKeys) {
    const auto cfg = load_config_text(R"(
providers:
  a: {kind: mock}
  b: {kind: mock}
routes:
  - model: "m"
    strategy: fallback
    targets:
      - {provider: a, timeouts: {connect: 2s, first_token: 3s}}
      - {provider: b, breaker: {cooldown: 5s}}
    retries: {attempts: 2, backoff_base: 10ms, backoff_cap: 40ms, retry_after_cap: 1s, on: [timeout, reset, 500]}
    breaker: {consecutive_failures: 7, error_ratio: 0, window: 1m}
    timeouts: {total: 30s, idle: 4s}
    fallbacks: [long]
    fallback_on: {context_length_exceeded: long, content_policy: [long]}
  - name: long
    targets: [{provider: b}]
)");
    ASSERT_EQ(cfg.routes.size(), 2u);
    const auto& r = cfg.routes[0];
    EXPECT_EQ(r.name, "m");
    EXPECT_EQ(r.strategy, "fallback");
    EXPECT_EQ(r.retries.attempts, 2u);
    EXPECT_EQ(r.retries.backoff_base.count(), 10);
    EXPECT_EQ(r.retries.backoff_cap.count(), 40);
    EXPECT_EQ(r.retries.retry_after_cap.count(), 1000);
    EXPECT_FALSE(r.retries.on_connect_error);
    EXPECT_TRUE(r.retries.on_timeout);
    EXPECT_TRUE(r.retries.on_reset);
    EXPECT_EQ(r.retries.on_status, std::vector<int>{500});
    EXPECT_EQ(r.breaker.consecutive_failures, 7u);
    EXPECT_EQ(r.breaker.error_ratio, 0.0);
    EXPECT_EQ(r.breaker.window.count(), 60000);
    EXPECT_EQ(r.total_timeout.count(), 30000);
    EXPECT_EQ(r.timeouts.idle->count(), 4000);
    EXPECT_FALSE(r.timeouts.connect);
    EXPECT_EQ(r.targets[0].timeouts.connect->count(), 2000);
    EXPECT_EQ(r.targets[0].timeouts.first_token->count(), 3000);
    EXPECT_FALSE(r.targets[0].breaker);
    ASSERT_TRUE(r.targets[1].breaker);
    EXPECT_EQ(r.targets[1].breaker->cooldown.count(), 5000);
    EXPECT_EQ(r.targets[1].breaker->consecutive_failures, 7u);  // the rest from the route
    EXPECT_EQ(r.fallbacks, std::vector<std::string>{"long"});
    ASSERT_EQ(r.fallback_on.size(), 2u);
    EXPECT_EQ(r.fallback_on[0].first, "context_length_exceeded");
    EXPECT_EQ(r.fallback_on[0].second, std::vector<std::string>{"long"});
    EXPECT_EQ(cfg.routes[1].name, "long");
    EXPECT_TRUE(cfg.routes[1].model.empty());
    // Defaults.
    EXPECT_EQ(cfg.routes[1].strategy, "weighted");
    EXPECT_EQ(cfg.routes[1].retries.attempts, 3u);
    EXPECT_EQ(cfg.routes[1].retries.on_status, (std::vector<int>{429, 500, 502, 503, 504, 529}));
    EXPECT_TRUE(cfg.routes[1].breaker.enabled);
}
}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

/// What Runtime::build says about a config, "" when it builds.
std::string build_error(const std::string& yaml) {
    try {
        Runtime::build(load_config_text(yaml));
        return "";
    } catch (const ConfigError& e) {
        return e.what();
    }
}

TEST(SafeByDefault, OpenListenWithoutKeysAndARealProviderIsAStartupError) {
    const std::string provider =
        "providers:\n  oai:\n    kind: openai\n    base_url: \"http://127.0.0.1:9\"\n    api_key: \"sk-x\"\n"
        "routes:\n  - model: \"*\"\n    targets: [{provider: oai}]\n";
    const std::string err = build_error("server:\n  listen: \"0.0.0.0:8080\"\n" + provider);
    EXPECT_NE(err.find("server.allow_unauthenticated: true"), std::string::npos) << err;
    EXPECT_NE(err.find("keys:"), std::string::npos) << err;
    EXPECT_EQ(err.find("sk-x"), std::string::npos) << err;
    // Each way out: accept the risk, add keys, or listen on loopback.
    EXPECT_EQ(build_error("server:\n  listen: \"0.0.0.0:8080\"\n  allow_unauthenticated: true\n" + provider),
              "");
    EXPECT_EQ(build_error("server:\n  listen: \"0.0.0.0:8080\"\n" + provider +
                          "keys:\n  - name: t\n    key: \"client-key-123\"\n"),
              "");
    EXPECT_EQ(build_error("server:\n  listen: \"127.0.0.1:8080\"\n" + provider), "");
    EXPECT_EQ(build_error("server:\n  listen: \"[::1]:8080\"\n" + provider), "");
    // The container's default (mock only) stays usable on 0.0.0.0.
    EXPECT_EQ(build_error("server:\n  listen: \"0.0.0.0:8080\"\nproviders:\n  mock:\n    kind: mock\n"
                          "routes:\n  - model: \"*\"\n    targets: [{provider: mock}]\n"),
              "");
}

}  // namespace
}  // namespace sluice
