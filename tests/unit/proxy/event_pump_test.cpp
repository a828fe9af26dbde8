// The event pump's fast path gives exactly what decoding every event gives: same client bytes,
// same usage, same end, for every split of the upstream body, both with and without the client
// asking for usage, on canonical and non-canonical streams.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "providers/openai_wire.hpp"
#include "proxy/event_pump.hpp"
#include "sse/sse.hpp"

namespace sluice::proxy {
namespace {

struct Result {
    std::string out;
    Usage usage;
    bool finished = false;
    bool ok = true;
    bool partial = false;
};

/// Reference: every event through the WHATWG decoder and on_event.
Result decoded(const std::string& body, bool wants_usage) {
    Result r;
    OpenAiStreamRelay relay(wants_usage);
    sse::Decoder d;
    bool failed = false;
    r.ok = d.feed(body, [&](const sse::Event& ev) {
        if (!failed && !relay.on_event(ev, r.out)) {
            failed = true;
        }
    }) && !failed;
    r.usage = relay.usage();
    r.finished = relay.finished();
    r.partial = d.has_partial();
    return r;
}

/// The pump, fed `body` in pieces cut at `cuts`.
Result pumped(const std::string& body, bool wants_usage, const std::vector<std::size_t>& cuts) {
    Result r;
    OpenAiStreamRelay relay(wants_usage);
    EventPump pump;
    std::string payload;
    std::size_t from = 0;
    for (std::size_t i = 0; i <= cuts.size() && r.ok; ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : body.size();
        payload.append(body, from, to - from);
        from = to;
        r.ok = pump.feed(payload, relay, r.out, i == cuts.size());
    }
    r.usage = relay.usage();
    r.finished = relay.finished();
    r.partial = pump.has_partial();
    return r;
}

void expect_same(const Result& want, const Result& got, const std::string& what) {
    EXPECT_EQ(got.out, want.out) << what;
    EXPECT_EQ(got.usage.prompt_tokens, want.usage.prompt_tokens) << what;
    EXPECT_EQ(got.usage.completion_tokens, want.usage.completion_tokens) << what;
    EXPECT_EQ(got.finished, want.finished) << what;
    EXPECT_EQ(got.ok, want.ok) << what;
    EXPECT_EQ(got.partial, want.partial) << what;
}

std::string chunk(const std::string& text) {
    return "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":"
           "{\"content\":\"" +
           text + "\"},\"finish_reason\":null}]}\n\n";
}

const std::vector<std::pair<const char*, std::string>>& streams() {
    static const std::vector<std::pair<const char*, std::string>> s = {
        {"canonical with a usage-only chunk",
         chunk("Hel") + chunk("lo") +
             "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,"
             "\"total_tokens\":7}}\n\ndata: [DONE]\n\n"},
        {"usage:null members on every chunk",
         "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n"
         "data: {\"id\":\"c\",\"usage\":null,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n"
         "data: [DONE]\n\n"},
        {"usage on the last content chunk",
         chunk("x") + "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
                      "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\ndata: [DONE]\n\n"},
        {"an escaped usage key", chunk("y") + "data: {\"choices\":[],\"\\u0075sage\":{\"prompt_tokens\":3,"
                                              "\"completion_tokens\":4}}\n\ndata: [DONE]\n\n"},
        {"comments, event and id fields, a no-space data line",
         ": keep-alive\n\n" + chunk("a") + "event: x\nid: 7\ndata: {\"choices\":[]}\n\ndata:{\"a\":1}\n\n" +
             chunk("b") + "data: [DONE]\n\n"},
        {"CRLF line endings", "data: {\"a\":1}\r\n\r\n" + chunk("c") + "data: [DONE]\r\n\r\n"},
        {"multi-line data and stray blank lines",
         "\n\n" + chunk("d") + "data: {\"a\":\ndata: 1}\n\n\n" + chunk("e") + "data: [DONE]\n\n"},
        {"a stream error event",
         chunk("f") + "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n" +
             chunk("never")},
        {"invalid JSON passed on", "data: {not json\n\n" + chunk("g") + "data: [DONE]\n\n"},
        {"cut mid-event", chunk("h") + "data: {\"id\":\"c\",\"choi"},
        {"content mentioning usage in text", chunk("the \\\"usage\\\" of tokens") + "data: [DONE]\n\n"},
    };
    return s;
}

TEST(EventPump, F1_SameBytesUsageAndEndAsDecodingEveryEventAtEveryTwoWaySplit) {
    for (const auto& [name, body] : streams()) {
        for (const bool wants_usage : {false, true}) {
            const Result want = decoded(body, wants_usage);
            for (std::size_t cut = 0; cut <= body.size(); ++cut) {
                expect_same(want, pumped(body, wants_usage, {cut}),
                            std::string(name) + (wants_usage ? " (usage asked)" : "") + ", cut at " +
                                std::to_string(cut));
            }
        }
    }
}

TEST(EventPump, F1_SameResultFedOneByteAtATime) {
    for (const auto& [name, body] : streams()) {
        std::vector<std::size_t> cuts;
        for (std::size_t i = 1; i < body.size(); ++i) {
            cuts.push_back(i);
        }
        expect_same(decoded(body, false), pumped(body, false, cuts), name);
    }
}

TEST(EventPump, PlainChunksAreCopiedWithoutDecodingAndUsageChunksAreStillHidden) {
    const std::string body =
        chunk("a") + chunk("b") +
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
    const Result r = pumped(body, false, {});
    EXPECT_EQ(r.out, chunk("a") + chunk("b") + "data: [DONE]\n\n");
    EXPECT_EQ(r.usage.prompt_tokens, 5);
    EXPECT_TRUE(r.finished);
}

TEST(EventPump, AnEventOverTheCarryLimitIsHandedToTheDecoderWhichEnforcesItsCap) {
    OpenAiStreamRelay relay(false);
    EventPump pump;
    std::string out;
    std::string payload = "data: " + std::string(EventPump::kMaxCarry + 10, 'x');
    ASSERT_TRUE(pump.feed(payload, relay, out, false));
    EXPECT_TRUE(payload.empty()) << "the decoder holds it now";
    EXPECT_TRUE(pump.has_partial());
    std::string more(sse::kMaxLineBytes, 'y');
    EXPECT_FALSE(pump.feed(more, relay, out, false));
    EXPECT_TRUE(pump.decoder_failed());
    EXPECT_STREQ(pump.failure(), "line");
}

}  // namespace
}  // namespace sluice::proxy
