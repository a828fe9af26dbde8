#include <charconv>
#include <cmath>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

#include "util/strings.hpp"
#include "util/url.hpp"

namespace sluice {
namespace {

std::string reference_fixed3(double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed, 3);
    return std::string(buf, r.ptr);
}

// The integer path prints what to_chars prints for every millisecond value built from whole
// microseconds (how timings reach it), small and large, and falls back to to_chars past 2^53
// (to the shortest form where the fixed one does not fit its buffer).
TEST(NumberText, Fixed3MatchesToCharsOnMicrosecondValues) {
    for (std::int64_t us = 0; us < 200000; us += 7) {
        const double ms = static_cast<double>(us) / 1000.0;
        ASSERT_EQ(std::string(NumberText::fixed3(ms).view()), reference_fixed3(ms)) << us;
    }
    for (const std::int64_t us : {999999999LL, 86400000000LL, 1234567890123LL, 9007199254740LL}) {
        const double ms = static_cast<double>(us) / 1000.0;
        EXPECT_EQ(std::string(NumberText::fixed3(ms).view()), reference_fixed3(ms)) << us;
    }
    EXPECT_EQ(std::string(NumberText::fixed3(12.3456).view()), "12.346");
    EXPECT_EQ(std::string(NumberText::fixed3(-4.5).view()), "-4.500");
    EXPECT_EQ(std::string(NumberText::fixed3(1e300).view()), "1e+300");  // no room for 301 digits
    EXPECT_EQ(std::string(NumberText::fixed3(std::nan("")).view()), reference_fixed3(std::nan("")));
}

// Case folding applies to ASCII letters only: every pair of bytes compares as the obvious
// definition says ('@' and '`', '[' and '{' differ only in bit 0x20 too, and stay different).
TEST(Strings, IequalsFoldsLettersOnlyForEveryBytePair) {
    const auto lower = [](unsigned c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
    for (unsigned a = 0; a < 256; ++a) {
        for (unsigned b = 0; b < 256; ++b) {
            const char x = static_cast<char>(a);
            const char y = static_cast<char>(b);
            ASSERT_EQ(iequals(std::string_view(&x, 1), std::string_view(&y, 1)), lower(a) == lower(b))
                << a << " " << b;
        }
    }
    EXPECT_TRUE(iequals("Content-Length", "content-length"));
    EXPECT_FALSE(iequals("content-length", "content-lengt"));
}

// The table-driven header checks agree with RFC 9110's definitions for every byte value.
TEST(Strings, HeaderNameAndValueChecksMatchTheRfcForEveryByte) {
    for (unsigned c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        const bool tchar = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c != 0 && std::strchr("!#$%&'*+-.^_`|~", static_cast<int>(c)) != nullptr);
        const bool field = !((c < 0x20 && c != '\t') || c == 0x7f);
        const std::string name = "x-" + std::string(1, ch);
        const std::string value = "a long value that reaches the vector loop " + std::string(1, ch) + " end";
        EXPECT_EQ(valid_header_name(name), tchar) << c;
        EXPECT_EQ(valid_header_value(value), field) << c;
    }
    EXPECT_FALSE(valid_header_name(""));
    EXPECT_TRUE(valid_header_value(""));
}

}  // namespace
}  // namespace sluice
