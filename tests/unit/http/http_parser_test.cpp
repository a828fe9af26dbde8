#include <gtest/gtest.h>

#include <string>
#include <utility>

#include "http/http_parser.hpp"

namespace sluice::http1 {
namespace {

using namespace std::string_literals;

struct Parsed {
    ParseStatus status = ParseStatus::incomplete;
    MessageHead head;
    ParseError error;
    std::size_t consumed = 0;
};

Parsed parse(std::string_view raw, HeadLimits limits = {}) {
    Parsed p;
    p.status = parse_request_head(raw, limits, p.head, p.consumed, p.error);
    return p;
}

void expect_rejected(std::string_view raw, int status = 400) {
    const auto p = parse(raw);
    EXPECT_EQ(p.status, ParseStatus::error) << raw;
    EXPECT_EQ(p.error.status, status) << raw << " -> " << p.error.message;
}

TEST(HttpParser, ParsesASimpleRequest) {
    const auto p = parse("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    ASSERT_EQ(p.status, ParseStatus::done);
    EXPECT_EQ(p.head.method, "POST");
    EXPECT_EQ(p.head.target, "/v1/chat/completions");
    EXPECT_EQ(p.head.content_length, 5u);
    EXPECT_TRUE(p.head.keep_alive);
    EXPECT_EQ(p.consumed,
              std::string_view("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
                  .size());
}

TEST(HttpParser, IncompleteUntilBlankLine) {
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: x\r\n").status, ParseStatus::incomplete);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: x\r\n\r").status, ParseStatus::incomplete);
}

TEST(HttpParser, ConnectionSemantics) {
    EXPECT_FALSE(parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").head.keep_alive);
    EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n").head.keep_alive);
    EXPECT_TRUE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").head.keep_alive);
}

TEST(Framing, A1_ContentLengthWithChunkedIsRejected) {
    expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n");
    expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n");
    expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n");
    expect_rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\t\r\nContent-Length: 5\r\n\r\n");
}

TEST(Framing, A2_OddTransferEncodingsAreRejected) {
    for (const char* te :
         {"gzip", "chunked, gzip", "chunked, chunked", "xchunked", "gzip, chunked", "identity"}) {
        expect_rejected(std::string("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ") + te + "\r\n\r\n");
    }
    expect_rejected("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    expect_rejected(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n");
    EXPECT_TRUE(parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n").head.chunked);
}

TEST(Framing, A3_BadContentLengthsAreRejected) {
    for (const char* cl : {"+5", "5 ,5", "", "0x10", "-1", "12345678901234567890", "5, 5", "1e3"}) {
        expect_rejected(std::string("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ") + cl + "\r\n\r\n");
    }
    expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
    expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n");
}

TEST(Framing, A5_MalformedHeadersAreRejected) {
    expect_rejected("GET / HTTP/1.1\nHost: x\n\n");                    // bare LF
    expect_rejected("GET / HTTP/1.1\r\nHost: x\n\r\n");                // bare LF in a field
    expect_rejected("GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n");        // bare CR
    expect_rejected("GET / HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"s);  // NUL
    expect_rejected(
        "GET / HTTP/1.1\r\nHost: x\r\nX: a\x01"
        "b\r\n\r\n");                                                          // CTL
    expect_rejected("GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n");           // empty name
    expect_rejected("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n  folded\r\n\r\n");  // obs-fold
    expect_rejected("GET / HTTP/1.1\r\nHost : x\r\n\r\n");                     // space before colon
    expect_rejected("GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded: y\r\n\r\n");    // underscore
    expect_rejected("GET / HTTP/1.1\r\nX-No-Colon\r\n\r\n");
    expect_rejected("GET / HTTP/1.1\r\n\r\n");  // no Host on 1.1
    expect_rejected("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
    expect_rejected("GET  / HTTP/1.1\r\nHost: x\r\n\r\n");  // double space
    expect_rejected("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
}

// Each malformed field line gets the message naming its own fault, on requests, and responses
// keep their laxer name rule (underscores allowed) with a 502.
TEST(Framing, A5_EachMalformedFieldNamesItsFault) {
    const auto message = [](std::string_view raw) { return parse(raw).error.message; };
    EXPECT_EQ(message("GET / HTTP/1.1\r\nHost: x\r\nX: a\x01z\r\n\r\n"),
              "control character in a header value");
    EXPECT_EQ(message("GET / HTTP/1.1\r\nHost: x\r\nX: a\x7f\r\n\r\n"),
              "control character in a header value");
    EXPECT_EQ(message("GET / HTTP/1.1\r\nHost: x\r\n: empty\r\n\r\n"), "empty header name");
    EXPECT_EQ(message("GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n  folded\r\n\r\n"),
              "obsolete line folding is not accepted");
    EXPECT_EQ(message("GET / HTTP/1.1\r\nHost : x\r\n\r\n"),
              "whitespace between a header name and its colon");
    EXPECT_EQ(message("GET / HTTP/1.1\r\nHost\t: x\r\n\r\n"),
              "whitespace between a header name and its colon");
    EXPECT_EQ(message("GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded: y\r\n\r\n"),
              "underscores in header names are not accepted");
    EXPECT_EQ(message("GET / HTTP/1.1\r\nHost: x\r\nX(y): z\r\n\r\n"), "invalid character in a header name");
    EXPECT_EQ(message("GET / HTTP/1.1\r\nX-No-Colon\r\n\r\n"), "header line without a colon");
    EXPECT_EQ(message("GET / HTTP/1.1\r\nX No Colon\r\n\r\n"), "header line without a colon");

    MessageHead head;
    std::size_t consumed = 0;
    ParseError err;
    ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nX_Up: 1\r\nContent-Length: 0\r\n\r\n", {}, head,
                                  consumed, err),
              ParseStatus::done);
    EXPECT_EQ(head.find("x_up"), "1");
    ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nX Up: 1\r\n\r\n", {}, head, consumed, err),
              ParseStatus::error);
    EXPECT_EQ(err.status, 502);
    EXPECT_EQ(err.message, "whitespace between a header name and its colon");
}

// Field values keep what is between the colon and the CR, without the optional whitespace
// around it; names keep their case.
TEST(HttpParser, FieldValuesLoseOnlyTheirSurroundingWhitespace) {
    const auto p = parse("GET / HTTP/1.1\r\nHost:x\r\nX-A: \t a b \t\r\nX-Empty:\r\nX-Sp:   \r\n\r\n");
    ASSERT_EQ(p.status, ParseStatus::done) << p.error.message;
    ASSERT_EQ(p.head.headers.size(), 4u);
    EXPECT_EQ(p.head.headers[0].name, "Host");
    EXPECT_EQ(p.head.headers[0].value, "x");
    EXPECT_EQ(p.head.headers[1].value, "a b");
    EXPECT_EQ(p.head.headers[2].value, "");
    EXPECT_EQ(p.head.headers[3].value, "");
}

TEST(Framing, A6_OversizedHeadsGetTheirStatus) {
    HeadLimits limits;
    limits.max_head_bytes = 1024;
    limits.max_start_line = 512;
    const std::string long_target = "GET /" + std::string(600, 'a') + " HTTP/1.1\r\n";
    Parsed p;
    p.status = parse_request_head(long_target, limits, p.head, p.consumed, p.error);
    EXPECT_EQ(p.error.status, 414);
    const std::string big = "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(2000, 'a');
    p.status = parse_request_head(big, limits, p.head, p.consumed, p.error);
    EXPECT_EQ(p.status, ParseStatus::error);
    EXPECT_EQ(p.error.status, 431);
    std::string many = "GET / HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 150; ++i) {
        many += "A: b\r\n";
    }
    many += "\r\n";
    p.status = parse_request_head(many, HeadLimits{}, p.head, p.consumed, p.error);
    EXPECT_EQ(p.error.status, 431);
}

/// Feeds `raw` one byte at a time into a growing buffer, as a client sending one byte per packet
/// would, and returns the last status with the parser work the resumable scan counted.
std::pair<Parsed, std::uint64_t> trickle(std::string_view raw, HeadLimits limits = {}) {
    Parsed p;
    HeadScan scan;
    std::string buf;
    for (const char c : raw) {
        buf += c;
        p.status = parse_request_head(buf, limits, p.head, p.consumed, p.error, &scan);
        if (p.status != ParseStatus::incomplete) {
            break;
        }
    }
    return {std::move(p), scan.work};
}

TEST(Framing, A6_AHeadSentOneByteAtATimeCostsEachByteOnce) {
    std::string head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n";
    while (head.size() < 16000) {
        head += "X-Pad: " + std::string(190, 'p') + "\r\n";
    }
    head += "Content-Length: 0\r\n\r\n";
    ASSERT_LT(head.size(), 16384u);
    const auto [p, work] = trickle(head);
    ASSERT_EQ(p.status, ParseStatus::done) << p.error.message;
    EXPECT_EQ(p.consumed, head.size());
    EXPECT_EQ(p.head.find("content-length"), "0");
    // Linear: every byte looked at once. A rescan from byte 0 per read would be ~n^2/2 (128 M).
    EXPECT_EQ(work, head.size());

    // Judged the same as in one piece: a CR last in one read, a non-LF first in the next.
    EXPECT_EQ(trickle("GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n").first.error.code, "invalid_framing");
    EXPECT_EQ(trickle("GET / HTTP/1.1\nHost: x\r\n\r\n").first.error.code, "invalid_framing");
    HeadLimits small;
    small.max_head_bytes = 1024;
    small.max_start_line = 512;
    EXPECT_EQ(trickle("GET /" + std::string(600, 'a') + " HTTP/1.1\r\n", small).first.error.status, 414);
    const auto [big, big_work] = trickle("GET / HTTP/1.1\r\nX: " + std::string(4000, 'a'), small);
    EXPECT_EQ(big.error.status, 431);
    EXPECT_EQ(big_work, 1025u);  // stopped one byte past the limit, not at the end of what was sent
}

TEST(Framing, A7_ExpectContinueIsRecognised) {
    const auto p = parse("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    EXPECT_TRUE(p.head.expect_continue);
    expect_rejected("POST / HTTP/1.1\r\nHost: x\r\nExpect: something\r\n\r\n", 417);
}

std::string decode_all(std::string_view body, bool& ok, std::size_t split = 0) {
    ChunkedDecoder d;
    std::string out;
    std::size_t pos = 0;
    auto feed = [&](std::string_view part) {
        std::size_t i = 0;
        while (i < part.size() && !d.done() && !d.failed()) {
            i += d.feed(part.substr(i), out);
            if (d.failed()) {
                break;
            }
        }
    };
    if (split > 0 && split < body.size()) {
        feed(body.substr(0, split));
        pos = split;
    }
    feed(body.substr(pos));
    ok = d.done() && !d.failed();
    return out;
}

TEST(Chunked, DecodesAtEverySplitOffset) {
    const std::string body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n";
    for (std::size_t split = 0; split <= body.size(); ++split) {
        bool ok = false;
        EXPECT_EQ(decode_all(body, ok, split), "hello world") << split;
        EXPECT_TRUE(ok) << split;
    }
}

TEST(Framing, A4_BadChunkSizesAreRejected) {
    for (const char* bad : {"ffffffffffffffff1\r\nx\r\n0\r\n\r\n", "-5\r\nhello\r\n0\r\n\r\n",
                            " 5\r\nhello\r\n0\r\n\r\n", "0x5\r\nhello\r\n0\r\n\r\n", "5\nhello\r\n0\r\n\r\n",
                            "5 x\r\nhello\r\n0\r\n\r\n", "5\r\nhelloX\r\n0\r\n\r\n", "\r\n"}) {
        bool ok = true;
        decode_all(bad, ok);
        EXPECT_FALSE(ok) << bad;
    }
    const std::string huge_ext = "5;" + std::string(100 * 1024, 'a') + "\r\nhello\r\n0\r\n\r\n";
    bool ok = true;
    decode_all(huge_ext, ok);
    EXPECT_FALSE(ok);
    // Whitespace before ';' is allowed (BWS).
    decode_all("5 ;a=b\r\nhello\r\n0\r\n\r\n", ok);
    EXPECT_TRUE(ok);
}

TEST(HttpParser, ParsesResponsesAndRejectsAmbiguousOnes) {
    MessageHead h;
    std::size_t consumed = 0;
    ParseError err;
    EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", {}, h, consumed, err),
              ParseStatus::done);
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(parse_response_head("HTTP/1.1 204\r\n\r\n", {}, h, consumed, err), ParseStatus::done);
    EXPECT_EQ(h.status, 204);
    // E6: CL + TE in a response → 502.
    EXPECT_EQ(
        parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", {},
                            h, consumed, err),
        ParseStatus::error);
    EXPECT_EQ(err.status, 502);
    EXPECT_EQ(parse_response_head("HTTP/1.1 2000 OK\r\n\r\n", {}, h, consumed, err), ParseStatus::error);
    EXPECT_EQ(parse_response_head("HTTX/1.1 200 OK\r\n\r\n", {}, h, consumed, err), ParseStatus::error);
}

}  // namespace
}  // namespace sluice::http1
