// Every value that goes into an upstream path (Gemini model, Azure deployment, Bedrock model id)
// leaves as one percent-encoded segment: whatever a client names, the request-target holds only
// RFC 3986 pchar characters, '/' between sluice's own segments and sluice's own query.
#include <gtest/gtest.h>

#include "api/api_request.hpp"
#include "providers/azure_provider.hpp"
#include "providers/bedrock_provider.hpp"
#include "providers/gemini_provider.hpp"
#include "providers/openai_provider.hpp"
#include "util/url.hpp"

namespace sluice {
namespace {

/// RFC 3986 pchar = unreserved / pct-encoded / sub-delims / ":" / "@", checked here on its own
/// (not with the code under test).
bool only_pchar_path(std::string_view target, std::string_view& path) {
    const auto q = target.find('?');
    path = target.substr(0, q);
    if (path.empty() || path.front() != '/') {
        return false;
    }
    for (std::size_t i = 0; i < path.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(path[i]);
        if (std::isalnum(c) != 0 ||
            std::string_view("-._~!$&'()*+,;=:@/").find(static_cast<char>(c)) != std::string_view::npos) {
            continue;
        }
        if (c == '%' && i + 2 < path.size() + 0 &&
            std::isxdigit(static_cast<unsigned char>(path[i + 1])) != 0 &&
            std::isxdigit(static_cast<unsigned char>(path[i + 2])) != 0) {
            i += 2;
            continue;
        }
        return false;
    }
    return true;
}

const std::vector<std::string> kHostile = {
    "x\r\nX-Injected: 1\r\n\r\nGET /other HTTP/1.1",
    "../../x",
    "x/../../admin",
    "x?key=stolen",
    "x#fragment",
    "x%2F..%2F",
    "x y",
    std::string("x\0nul", 5),
    "\xc3\xa9\xe2\x82\xac",
    "x\x7f",
    "x\tz",
    "a/b:c@d",
};

ApiRequest chat() {
    ApiRequest r;
    EXPECT_FALSE(parse_api_request(Endpoint::chat_completions,
                                   R"({"model":"m","messages":[{"role":"user","content":"hi"}]})", r));
    return r;
}

/// The path segments sluice writes for one value: the value must be one segment whatever it is.
void expect_one_segment(const UpstreamRequest& out, std::string_view before, std::string_view after,
                        const std::string& name) {
    std::string_view path;
    ASSERT_TRUE(only_pchar_path(out.target, path)) << out.target;
    ASSERT_EQ(path.substr(0, before.size()), before) << out.target;
    ASSERT_GE(path.size(), before.size() + after.size());
    ASSERT_EQ(path.substr(path.size() - after.size()), after) << out.target;
    const auto segment = path.substr(before.size(), path.size() - before.size() - after.size());
    EXPECT_EQ(segment.find('/'), std::string_view::npos) << name << " -> " << out.target;
    EXPECT_NE(segment, "..");
}

TEST(UpstreamPath, GeminiModelIsOneEncodedSegment) {
    ProviderConfig pc;
    pc.name = "g";
    pc.kind = "gemini";
    pc.base_url = "https://generativelanguage.googleapis.com";
    pc.api_key = "AIza-test";
    GeminiProvider p(pc);
    for (const auto& name : kHostile) {
        UpstreamRequest out;
        ASSERT_FALSE(p.build_request(chat(), name, out)) << name;
        expect_one_segment(out, "/v1beta/models/", ":generateContent", name);
    }
    UpstreamRequest out;
    EXPECT_TRUE(p.build_request(chat(), "..", out));
    EXPECT_TRUE(p.build_request(chat(), ".", out));
    EXPECT_TRUE(p.build_request(chat(), "", out));
}

TEST(UpstreamPath, AzureDeploymentIsOneEncodedSegment) {
    ProviderConfig pc;
    pc.name = "az";
    pc.kind = "azure";
    pc.base_url = "https://my-res.openai.azure.com";
    pc.api_key = "azure-key";
    pc.api_key_set = true;
    pc.api_version = "2024-10-21";
    AzureProvider p(pc);
    for (const auto& name : kHostile) {
        UpstreamRequest out;
        ASSERT_FALSE(p.build_request(chat(), name, out)) << name;
        expect_one_segment(out, "/openai/deployments/", "/chat/completions", name);
        EXPECT_EQ(out.target.substr(out.target.find('?')), "?api-version=2024-10-21");
    }
    UpstreamRequest out;
    EXPECT_TRUE(p.build_request(chat(), "..", out));
}

TEST(UpstreamPath, BedrockModelIdIsOneEncodedSegment) {
    ProviderConfig pc;
    pc.name = "br";
    pc.kind = "bedrock";
    pc.region = "us-east-1";
    pc.base_url = "https://bedrock-runtime.us-east-1.amazonaws.com";
    BedrockProvider p(pc, aws::Credentials{"AKID", "SECRET", ""});
    for (const auto& name : kHostile) {
        UpstreamRequest out;
        ASSERT_FALSE(p.build_signed(chat(), name, "20250101T000000Z", out)) << name;
        expect_one_segment(out, "/model/", "/converse", name);
        EXPECT_EQ(out.target.find('?'), std::string::npos);
    }
    UpstreamRequest out;
    EXPECT_TRUE(p.build_signed(chat(), "..", "20250101T000000Z", out));
}

TEST(UpstreamPath, TheSegmentEncoderKeepsOnlyUnreservedBytes) {
    std::string out;
    ASSERT_TRUE(append_path_segment(out, "a/b?c#d%e f\xc3\xa9:"));
    EXPECT_EQ(out, "a%2Fb%3Fc%23d%25e%20f%C3%A9%3A");
    for (const char* bad : {"", ".", ".."}) {
        std::string o = "keep";
        EXPECT_FALSE(append_path_segment(o, bad));
        EXPECT_EQ(o, "keep");
    }
}

}  // namespace
}  // namespace sluice
