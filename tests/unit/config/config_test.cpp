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

TEST(Config, PresetAndAzureMistakesAreErrors) {
    const std::map<std::string, std::string> env;
    auto expect_error = [&](const std::string& yaml, const std::string& message) {
        try {
            load_config_text(yaml, &env);
            ADD_FAILURE() << "loaded: " << yaml;
        } catch (const ConfigError& e) {
            EXPECT_NE(std::string(e.what()).find(message), std::string::npos) << e.what();
        }
    };
    expect_error("providers:\n  g: {kind: groq}\n", "needs an api_key (e.g. \"${GROQ_API_KEY}\")");
    expect_error("providers:\n  a: {kind: azure, api_key: k}\n", "my-resource.openai.azure.com");
    expect_error("providers:\n  a: {kind: azure, base_url: \"https://r\", api_version: latest}\n",
                 "expected a dated version");
    expect_error("providers:\n  o: {kind: openai, base_url: \"https://x\", api_version: v1}\n",
                 "applies to kind: azure only");
    expect_error("providers:\n  o: {kind: vertex}\n", "expected one of: openai, anthropic, gemini, bedrock, azure, mock, groq");
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
