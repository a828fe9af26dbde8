#include <gtest/gtest.h>

#include "sse/sse.hpp"

namespace sluice::sse {
namespace {

std::vector<Event> decode(std::string_view text, std::size_t split) {
    Decoder d;
    std::vector<Event> out;
    if (split > 0 && split < text.size()) {
        d.feed(text.substr(0, split), out);
        d.feed(text.substr(split), out);
    } else {
        d.feed(text, out);
    }
    return out;
}

std::string summary(const std::vector<Event>& events) {
    std::string s;
    for (const auto& e : events) {
        s += "[" + e.event + "|" + e.data + "|" + (e.comment_only ? "c:" + e.comment : "") + "]";
    }
    return s;
}

TEST(SseDecoder, F1_SameEventsAtEverySplitOffset) {
    const std::string text =
        ": keep-alive\n\n"
        "event: message_start\r\ndata: {\"a\":1}\r\n\r\n"
        "data: line one\ndata: line two\n\n"
        "data: caf\xc3\xa9 \xe2\x9c\x93\r\rdata:nospace\r\n\r\n"
        "id: 7\ndata: [DONE]\n\n";
    const std::string expected = summary(decode(text, 0));
    EXPECT_EQ(expected,
              "[||c:keep-alive][message_start|{\"a\":1}|][|line one\nline two|][|caf\xc3\xa9 "
              "\xe2\x9c\x93|][|nospace|][|[DONE]|]");
    for (std::size_t split = 1; split < text.size(); ++split) {
        EXPECT_EQ(summary(decode(text, split)), expected) << "split at " << split;
    }
}

TEST(SseDecoder, F1_ByteAtATime) {
    const std::string text = "data: a\r\n\r\ndata: b\n\ndata: c\r\r";
    Decoder d;
    std::vector<Event> out;
    for (const char c : text) {
        d.feed(std::string_view(&c, 1), out);
    }
    ASSERT_EQ(out.size(), 3u);
    EXPECT_EQ(out[2].data, "c");
}

TEST(SseDecoder, F2_OverlongLineFails) {
    Decoder d(1024);
    std::vector<Event> out;
    EXPECT_TRUE(d.feed("data: ", out));
    EXPECT_FALSE(d.feed(std::string(2000, 'x'), out));
    EXPECT_TRUE(d.failed());
}

TEST(SseDecoder, PartialEventIsReported) {
    Decoder d;
    std::vector<Event> out;
    d.feed("data: {\"x\":", out);
    EXPECT_TRUE(out.empty());
    EXPECT_TRUE(d.has_partial());
}

TEST(SseEncoder, RoundTripsMultiLineData) {
    Event e;
    e.event = "delta";
    e.data = "one\ntwo";
    e.has_data = true;
    std::string out;
    encode(e, out);
    EXPECT_EQ(out, "event: delta\ndata: one\ndata: two\n\n");
    const auto back = decode(out, 0);
    ASSERT_EQ(back.size(), 1u);
    EXPECT_EQ(back[0].data, "one\ntwo");
}

TEST(SseDecoder, AnEventOfManyDataLinesIsCappedWithoutABlankLine) {
    // 300 MB of short data: lines and never a blank line must not grow one buffer without end.
    Decoder d(1024, 64 * 1024);
    std::size_t events = 0;
    const std::string lines = [] {
        std::string s;
        for (int i = 0; i < 1000; ++i) {
            s += "data: 0123456789\n";
        }
        return s;
    }();
    bool ok = true;
    std::size_t fed = 0;
    while (ok && fed < 300u * 1024 * 1024) {
        ok = d.feed(lines, [&events](const Event&) { ++events; });
        fed += lines.size();
    }
    EXPECT_FALSE(ok);
    EXPECT_STREQ(d.failure(), "event");
    EXPECT_LT(fed, 200u * 1024);  // stopped at the cap, not after 300 MB
    EXPECT_EQ(events, 0u);
}

TEST(SseDecoder, ALineOverTheCapFailsAsALine) {
    Decoder d(1024, 64 * 1024);
    EXPECT_FALSE(d.feed("data: " + std::string(2000, 'a'), [](const Event&) {}));
    EXPECT_STREQ(d.failure(), "line");
}

}  // namespace
}  // namespace sluice::sse
