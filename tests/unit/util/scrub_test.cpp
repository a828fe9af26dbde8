#include <gtest/gtest.h>

#include "util/scrub.hpp"
#include "util/url.hpp"

namespace sluice {
namespace {

TEST(Scrub, E7_RemovesKeysFromProviderText) {
    EXPECT_EQ(scrub_secrets("Incorrect API key provided: sk-abc***xyz9. Get one", ""),
              "Incorrect API key provided: ***. Get one");
    EXPECT_EQ(scrub_secrets("bad key my-very-secret-key!", "my-very-secret-key"), "bad key ***!");
    EXPECT_EQ(scrub_secrets("GET https://x/v1?key=AIzaSyD-abc&alt=sse", ""),
              "GET https://x/v1?key=***&alt=sse");
    EXPECT_EQ(scrub_secrets("Authorization: Bearer abc.def", ""), "Authorization: Bearer ***");
    EXPECT_EQ(scrub_secrets("nothing here", "k"), "nothing here");
    EXPECT_LE(scrub_secrets(std::string(5000, 'a'), "", 100).size(), 104u);
}

TEST(Url, ParsesProviderBaseUrls) {
    auto u = parse_url("https://api.openai.com/v1/");
    ASSERT_TRUE(u);
    EXPECT_TRUE(u->tls);
    EXPECT_EQ(u->host, "api.openai.com");
    EXPECT_EQ(u->port, 443);
    EXPECT_EQ(u->path, "/v1");
    u = parse_url("http://[::1]:8000");
    ASSERT_TRUE(u);
    EXPECT_EQ(u->host, "::1");
    EXPECT_EQ(u->port, 8000);
    EXPECT_EQ(u->path, "");
    for (const char* bad :
         {"ftp://x", "http://", "http://user@x", "http://x/?q=1", "http://x:99999", "https://x y"}) {
        EXPECT_FALSE(parse_url(bad)) << bad;
    }
}

}  // namespace
}  // namespace sluice
