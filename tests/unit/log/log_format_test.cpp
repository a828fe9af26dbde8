#include <gtest/gtest.h>

#include "log/log.hpp"

namespace sluice::log {
namespace {

TEST(LogText, AValueWithControlBytesCannotForgeALine) {
    std::string out;
    append_text_value(out, "gpt\n2026-12-03T00:00:00.000Z info access request_id=forged");
    EXPECT_EQ(out.find('\n'), std::string::npos) << out;
    EXPECT_EQ(out.front(), '"');
    EXPECT_NE(out.find("\\n"), std::string::npos);
    for (const char* v : {"a\rb", "a\x01z", "a\x7f", "tab\there", "sp ace", "q\"uote", "k=v"}) {
        EXPECT_TRUE(needs_quotes(v)) << v;
    }
    out.clear();
    append_text_value(out, "mock-gpt-4o");
    EXPECT_EQ(out, "mock-gpt-4o");
}

TEST(LogText, MessagesHaveTheirControlBytesEscaped) {
    EXPECT_EQ(escape_controls("a\r\nb\x1b[31m"), "a\\x0d\\x0ab\\x1b[31m");
    EXPECT_EQ(escape_controls("plain text"), "plain text");
}

}  // namespace
}  // namespace sluice::log
