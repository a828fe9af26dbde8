#include <gtest/gtest.h>

#include "aws/eventstream.hpp"
#include "aws/sigv4.hpp"

namespace sluice::aws {
namespace {

// AWS's published example: a signed POST to IAM (docs "Signed Signature Version 4 Requests Examples").
TEST(SigV4, MatchesAwsIamPostExample) {
    SignRequest req;
    req.method = "POST";
    req.path = "/";
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                   {"Host", "iam.amazonaws.com"},
                   {"X-Amz-Date", "20110909T233600Z"}};
    req.payload = "Action=ListUsers&Version=2010-05-08";
    const Credentials creds{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};
    const Signature s = sign(req, creds, "us-east-1", "iam", "20110909T233600Z");
    EXPECT_EQ(s.signature, "ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c")
        << s.canonical_request;
    EXPECT_EQ(s.authorization,
              "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/iam/aws4_request, "
              "SignedHeaders=content-type;host;x-amz-date, "
              "Signature=ced6826de92d2bdeed8f846f0bf508e8559e98e4b0199114b84c54174deb456c");
}

// AWS's published S3 example "GET Object" (S3 signs the path encoded once).
TEST(SigV4, MatchesAwsS3GetObjectExample) {
    SignRequest req;
    req.method = "GET";
    req.path = "/test.txt";
    req.headers = {
        {"Host", "examplebucket.s3.amazonaws.com"},
        {"Range", "bytes=0-9"},
        {"x-amz-content-sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"x-amz-date", "20130524T000000Z"}};
    const Credentials creds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
    const Signature s = sign(req, creds, "us-east-1", "s3", "20130524T000000Z");
    EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        << s.canonical_request;
}

TEST(SigV4, BedrockPathSegmentsAreEncodedTwice) {
    SignRequest req;
    req.method = "POST";
    req.path = "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse";
    req.headers = {{"host", "bedrock-runtime.us-east-1.amazonaws.com"}, {"x-amz-date", "20240101T000000Z"}};
    const Signature s = sign(req, {"AK", "SK", ""}, "us-east-1", "bedrock", "20240101T000000Z");
    EXPECT_NE(s.canonical_request.find("/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n"),
              std::string::npos)
        << s.canonical_request;
}

/// Builds a frame by hand, as the tests' reference encoder.
std::string frame(const std::vector<std::pair<std::string, std::string>>& headers, const std::string& payload,
                  bool break_prelude = false, bool break_message = false) {
    std::string h;
    for (const auto& [k, v] : headers) {
        h.push_back(static_cast<char>(k.size()));
        h += k;
        h.push_back(7);
        h.push_back(static_cast<char>(v.size() >> 8));
        h.push_back(static_cast<char>(v.size() & 0xFF));
        h += v;
    }
    const std::uint32_t total = static_cast<std::uint32_t>(16 + h.size() + payload.size());
    auto be = [](std::uint32_t v) {
        return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                           static_cast<char>(v)};
    };
    std::string out = be(total) + be(static_cast<std::uint32_t>(h.size()));
    out += be(crc32(out) ^ (break_prelude ? 1U : 0U));
    out += h + payload;
    out += be(crc32(out) ^ (break_message ? 1U : 0U));
    return out;
}

TEST(EventStream, Crc32MatchesTheStandardCheckValue) {
    EXPECT_EQ(crc32("123456789"), 0xCBF43926U);
}

TEST(EventStream, DecodesFramesSplitAtEveryOffset) {
    const std::string bytes = frame({{":event-type", "contentBlockDelta"},
                                     {":content-type", "application/json"},
                                     {":message-type", "event"}},
                                    R"({"contentBlockIndex":0,"delta":{"text":"Hi"}})") +
                              frame({{":event-type", "metadata"}, {":message-type", "event"}},
                                    R"({"usage":{"inputTokens":3,"outputTokens":1}})");
    for (std::size_t split = 0; split <= bytes.size(); ++split) {
        EventStreamDecoder d;
        std::vector<EventMessage> got;
        auto on = [&](const EventMessage& m) { got.push_back(m); };
        ASSERT_TRUE(d.feed(std::string_view(bytes).substr(0, split), on));
        ASSERT_TRUE(d.feed(std::string_view(bytes).substr(split), on));
        ASSERT_EQ(got.size(), 2u) << split;
        EXPECT_EQ(got[0].headers.at(":event-type"), "contentBlockDelta");
        EXPECT_EQ(got[0].payload, R"({"contentBlockIndex":0,"delta":{"text":"Hi"}})");
        EXPECT_EQ(got[1].headers.at(":event-type"), "metadata");
        EXPECT_FALSE(d.has_partial());
    }
}

TEST(EventStream, BadCrcsFailTheStream) {
    EventStreamDecoder d;
    int seen = 0;
    EXPECT_FALSE(
        d.feed(frame({{":event-type", "x"}}, "{}", false, true), [&](const EventMessage&) { ++seen; }));
    EXPECT_NE(d.error().find("message CRC"), std::string::npos);
    EventStreamDecoder d2;
    EXPECT_FALSE(
        d2.feed(frame({{":event-type", "x"}}, "{}", true, false), [&](const EventMessage&) { ++seen; }));
    EXPECT_NE(d2.error().find("prelude CRC"), std::string::npos);
    EXPECT_EQ(seen, 0);
    // A good frame followed by a corrupt one: the first is delivered, then the stream fails.
    EventStreamDecoder d3;
    EXPECT_FALSE(d3.feed(frame({{":event-type", "a"}}, "1") + frame({{":event-type", "b"}}, "2", false, true),
                         [&](const EventMessage&) { ++seen; }));
    EXPECT_EQ(seen, 1);
}

TEST(EventStream, ImpossibleLengthsFail) {
    std::string bad = frame({}, "x");
    bad[0] = 0x7F;  // total length far beyond the cap (the prelude CRC is recomputed below)
    const std::uint32_t c = crc32(std::string_view(bad).substr(0, 8));
    bad[8] = static_cast<char>(c >> 24);
    bad[9] = static_cast<char>(c >> 16);
    bad[10] = static_cast<char>(c >> 8);
    bad[11] = static_cast<char>(c);
    EventStreamDecoder d;
    EXPECT_FALSE(d.feed(bad, [](const EventMessage&) {}));
    EXPECT_NE(d.error().find("length"), std::string::npos);
}

}  // namespace
}  // namespace sluice::aws
