#include <random>
#include <string>

#include <gtest/gtest.h>

#include "util/bytes.hpp"

namespace sluice {
namespace {

std::size_t naive(std::string_view s, std::size_t from, bool (*match)(unsigned char)) {
    for (std::size_t i = from; i < s.size(); ++i) {
        if (match(static_cast<unsigned char>(s[i]))) {
            return i;
        }
    }
    return s.size();
}

bool cr_or_lf(unsigned char c) {
    return c == '\r' || c == '\n';
}
bool json_special(unsigned char c) {
    return c == '"' || c == '\\' || c < 0x20 || c >= 0x80;
}
bool bad_field_byte(unsigned char c) {
    return (c < 0x20 && c != '\t') || c == 0x7f;
}

// The vector scans agree with a byte-by-byte loop for every byte value at every position of
// every alignment, including the tails shorter than a vector.
TEST(Bytes, VectorScansAgreeWithByteLoops) {
    for (int c = 0; c < 256; ++c) {
        for (std::size_t len = 1; len <= 40; ++len) {
            for (std::size_t at = 0; at < len; ++at) {
                std::string s(len, 'a');
                s[at] = static_cast<char>(c);
                for (std::size_t from = 0; from <= len; from += 7) {
                    ASSERT_EQ(bytes::find_cr_or_lf(s, from), naive(s, from, cr_or_lf)) << c << " " << at;
                    ASSERT_EQ(bytes::find_json_string_special(s, from), naive(s, from, json_special)) << c;
                    ASSERT_EQ(bytes::find_invalid_field_byte(s, from), naive(s, from, bad_field_byte)) << c;
                }
            }
        }
    }
    std::mt19937 rng(7);
    for (int round = 0; round < 2000; ++round) {
        std::string s(rng() % 100, ' ');
        for (char& ch : s) {
            ch = static_cast<char>(rng() % 4 == 0 ? rng() % 256 : 'a' + rng() % 26);
        }
        const std::size_t from = s.empty() ? 0 : rng() % s.size();
        ASSERT_EQ(bytes::find_cr_or_lf(s, from), naive(s, from, cr_or_lf));
        ASSERT_EQ(bytes::find_json_string_special(s, from), naive(s, from, json_special));
        ASSERT_EQ(bytes::find_invalid_field_byte(s, from), naive(s, from, bad_field_byte));
    }
}

}  // namespace
}  // namespace sluice
