// Per-request stream filters over typed deltas, proved with small test-only filters on an
// in-process sluice: one that holds back N characters and releases them, one that rewrites a
// word, one that stops mid-stream (terminal event after what it released) and one that stops
// before releasing anything (a clean JSON error, never retried), in both client dialects, and
// the bound on how much a filter may hold back.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <sluice/delta.hpp>
#include <sluice/filter.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_upstream.hpp"

namespace sluice::test {
namespace {

using nlohmann::json;
using Kind = StreamDelta::Kind;

constexpr const char* kSaid = "one two three secret four five six seven";
/// The mock echoes what the user said, one word per event.
const std::string kContent = std::string("This is a mock answer from sluice. You said: ") + kSaid;

/// Holds text until it has at least `n` characters, then releases it as one delta; anything
/// else releases the held text first.
class HoldBack final : public StreamFilter {
public:
    explicit HoldBack(std::size_t n) : n_(n) {}
    std::size_t holdback_limit() const noexcept override { return n_ + 16; }
    std::optional<GatewayError> on_delta(StreamDelta&& d, std::vector<StreamDelta>& release) override {
        if (d.kind == Kind::text) {
            held_ += d.text;
            if (utf8_length(held_) >= n_) {
                flush(release);
            }
            return std::nullopt;
        }
        flush(release);
        release.push_back(std::move(d));
        return std::nullopt;
    }
    std::optional<GatewayError> on_end(std::vector<StreamDelta>& release) override {
        flush(release);
        return std::nullopt;
    }

private:
    void flush(std::vector<StreamDelta>& release) {
        if (!held_.empty()) {
            release.push_back(StreamDelta::of(Kind::text, std::move(held_)));
            held_.clear();
        }
    }
    std::size_t n_;
    std::string held_;
};

/// Rewrites the word "secret" (the mock streams whole words).
class Rewrite final : public StreamFilter {
public:
    std::size_t holdback_limit() const noexcept override { return 0; }
    std::optional<GatewayError> on_delta(StreamDelta&& d, std::vector<StreamDelta>& release) override {
        if (d.kind == Kind::text) {
            if (const auto at = d.text.find("secret"); at != std::string::npos) {
                d.text.replace(at, 6, "[redacted]");
            }
        }
        release.push_back(std::move(d));
        return std::nullopt;
    }
    std::optional<GatewayError> on_end(std::vector<StreamDelta>& /*release*/) override {
        return std::nullopt;
    }
};

GatewayError policy_stop() {
    return GatewayError::bad_request("The answer broke the test policy.", "content_policy_violation");
}

/// Passes deltas until a text holds "secret", then ends the choice with content_filter and
/// stops the stream.
class StopMidStream final : public StreamFilter {
public:
    std::size_t holdback_limit() const noexcept override { return 0; }
    std::optional<GatewayError> on_delta(StreamDelta&& d, std::vector<StreamDelta>& release) override {
        if (d.kind == Kind::text && d.text.find("secret") != std::string::npos) {
            StreamDelta finish = StreamDelta::of(Kind::finish);
            finish.finish_reason = "content_filter";
            release.push_back(std::move(finish));
            return policy_stop();
        }
        release.push_back(std::move(d));
        return std::nullopt;
    }
    std::optional<GatewayError> on_end(std::vector<StreamDelta>& /*release*/) override {
        return std::nullopt;
    }
};

/// Holds everything (the start delta included) and stops at "secret": nothing was released.
class StopBeforeRelease final : public StreamFilter {
public:
    std::size_t holdback_limit() const noexcept override { return 1000; }
    std::optional<GatewayError> on_delta(StreamDelta&& d, std::vector<StreamDelta>& /*release*/) override {
        if (d.kind == Kind::text && d.text.find("secret") != std::string::npos) {
            return policy_stop();
        }
        held_.push_back(std::move(d));
        return std::nullopt;
    }
    std::optional<GatewayError> on_end(std::vector<StreamDelta>& release) override {
        for (auto& d : held_) {
            release.push_back(std::move(d));
        }
        held_.clear();
        return std::nullopt;
    }

private:
    std::vector<StreamDelta> held_;
};

/// Never releases a thing, and declares it holds back at most 5 characters.
class Greedy final : public StreamFilter {
public:
    std::size_t holdback_limit() const noexcept override { return 5; }
    std::optional<GatewayError> on_delta(StreamDelta&& d, std::vector<StreamDelta>& /*release*/) override {
        held_.push_back(std::move(d));
        return std::nullopt;
    }
    std::optional<GatewayError> on_end(std::vector<StreamDelta>& /*release*/) override {
        return std::nullopt;
    }

private:
    std::vector<StreamDelta> held_;
};

/// Picks the stream filter by the requested model's name; none for any other model.
class StreamFilters final : public Filter {
public:
    std::string_view name() const noexcept override { return "test-stream"; }
    unsigned hooks() const noexcept override { return stream; }
    std::unique_ptr<StreamFilter> on_stream(const RequestContext& ctx) const override {
        const std::string& m = ctx.api.model;
        if (m == "hold") {
            return std::make_unique<HoldBack>(12);
        }
        if (m == "rewrite") {
            return std::make_unique<Rewrite>();
        }
        if (m == "stop") {
            return std::make_unique<StopMidStream>();
        }
        if (m == "stop-early") {
            return std::make_unique<StopBeforeRelease>();
        }
        if (m == "greedy") {
            return std::make_unique<Greedy>();
        }
        return nullptr;
    }
};

std::string config(const std::string& base_url, const std::string& kind = "openai") {
    return "providers:\n  up:\n    kind: " + kind + "\n    base_url: \"" + base_url +
           "\"\n    api_key: \"sk-stream\"\n  again:\n    kind: " + kind + "\n    base_url: \"" + base_url +
           "\"\n    api_key: \"sk-stream\"\n"
           "routes:\n  - model: \"*\"\n    targets: [{provider: up}, {provider: again}]\n"
           // A provider's content-policy refusal would move on here; a stream filter's never does.
           "    fallback_on: {content_policy: [\"lenient\"]}\n"
           "  - name: \"lenient\"\n    targets: [{provider: again}]\n";
}

std::string chat(const std::string& model, bool usage = false) {
    return R"({"model":")" + model + R"(","stream":true,)" +
           (usage ? R"("stream_options":{"include_usage":true},)" : "") +
           R"("messages":[{"role":"user","content":")" + kSaid + R"("}]})";
}

std::string messages(const std::string& model) {
    return R"({"model":")" + model +
           R"(","max_tokens":64,"stream":true,"messages":[{"role":"user","content":")" + kSaid + R"("}]})";
}

/// The data payloads of an SSE body, in order.
std::vector<std::string> data_lines(const std::string& body) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while ((at = body.find("data: ", at)) != std::string::npos) {
        const auto end = body.find('\n', at);
        out.push_back(body.substr(at + 6, end - at - 6));
        at = end;
    }
    return out;
}

/// The text of an OpenAI chunk stream, one entry per content delta.
std::vector<std::string> openai_texts(const std::string& body) {
    std::vector<std::string> texts;
    for (const auto& d : data_lines(body)) {
        const json j = json::parse(d, nullptr, false);
        if (j.is_object() && j.contains("choices") && !j["choices"].empty()) {
            const json& delta = j["choices"][0]["delta"];
            if (delta.contains("content") && delta["content"].is_string() && delta["content"] != "") {
                texts.push_back(delta["content"].get<std::string>());
            }
        }
    }
    return texts;
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) {
        s += x;
    }
    return s;
}

struct StreamFilterTest : ::testing::Test {
    MockUpstream up;
    std::shared_ptr<StreamFilters> filters = std::make_shared<StreamFilters>();
    Gateway gw{config(up.base_url()), {filters}};
};

TEST_F(StreamFilterTest, AStreamWithoutStreamFiltersPassesTheProvidersChunksUntouched) {
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("plain"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(joined(openai_texts(r.body)), kContent);
    EXPECT_GE(openai_texts(r.body).size(), 16u) << "a word per event";
}

TEST_F(StreamFilterTest, AFilterHoldsBackNCharactersAndReleasesThemInOrder) {
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("hold", true));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto texts = openai_texts(r.body);
    EXPECT_EQ(joined(texts), kContent) << "everything held is released, in order";
    ASSERT_GE(texts.size(), 2u);
    for (std::size_t i = 0; i + 1 < texts.size(); ++i) {
        EXPECT_GE(texts[i].size(), 12u) << "released only once 12 characters were held: " << texts[i];
    }
    EXPECT_LT(texts.size(), openai_texts(c.post_json("/v1/chat/completions", chat("plain")).body).size());
    EXPECT_NE(r.body.find("\"finish_reason\":\"stop\""), std::string::npos);
    EXPECT_NE(r.body.find("\"usage\":{\"completion_tokens\""), std::string::npos) << "usage chunk re-encoded";
    EXPECT_EQ(r.body.substr(r.body.size() - 14), "data: [DONE]\n\n");
}

TEST_F(StreamFilterTest, AFilterRewritesADelta) {
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("rewrite"));
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string text = joined(openai_texts(r.body));
    EXPECT_EQ(text,
              "This is a mock answer from sluice. You said: one two three [redacted] four five six seven");
    EXPECT_EQ(r.body.find("secret"), std::string::npos);
}

TEST_F(StreamFilterTest, AFilterRewritesOnTheAnthropicFrontDoorToo) {
    Client c(gw.port());
    const auto r = c.post_json("/v1/messages", messages("rewrite"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("[redacted]"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("secret"), std::string::npos);
    EXPECT_NE(r.body.find("event: message_stop"), std::string::npos);
}

TEST_F(StreamFilterTest, AFilterThatStopsMidStreamEndsItWithATerminalEvent) {
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("stop"));
    ASSERT_EQ(r.status, 200) << "committed at the first released byte: " << r.body;
    EXPECT_EQ(joined(openai_texts(r.body)), "This is a mock answer from sluice. You said: one two three ");
    EXPECT_NE(r.body.find("\"finish_reason\":\"content_filter\""), std::string::npos) << r.body;
    const auto lines = data_lines(r.body);
    ASSERT_FALSE(lines.empty());
    const json last = json::parse(lines.back(), nullptr, false);
    EXPECT_EQ(last["error"]["code"], "content_policy_violation") << r.body;
    EXPECT_EQ(r.body.find("[DONE]"), std::string::npos);
    EXPECT_EQ(up.request_count(), 1u);
}

TEST_F(StreamFilterTest, AFilterThatStopsMidStreamOnTheAnthropicFrontDoorEndsWithAnErrorEvent) {
    Client c(gw.port());
    const auto r = c.post_json("/v1/messages", messages("stop"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("event: message_start"), std::string::npos);
    const auto at = r.body.rfind("event: error\ndata: ");
    ASSERT_NE(at, std::string::npos) << r.body;
    const json err =
        json::parse(r.body.substr(at + 19, r.body.find('\n', at + 19) - at - 19), nullptr, false);
    EXPECT_EQ(err["type"], "error");
    EXPECT_EQ(err["error"]["message"], "The answer broke the test policy.");
    EXPECT_EQ(r.body.find("event: message_stop"), std::string::npos);
}

TEST_F(StreamFilterTest, AFilterThatStopsBeforeReleasingAnythingGivesACleanJsonErrorNotRetried) {
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("stop-early"));
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
    const json j = json::parse(r.body, nullptr, false);
    EXPECT_EQ(j["error"]["code"], "content_policy_violation") << r.body;
    EXPECT_EQ(j["error"]["message"], "The answer broke the test policy.");
    EXPECT_EQ(up.request_count(), 1u) << "the gateway's verdict is final: no retry, no other target";

    const auto a = c.post_json("/v1/messages", messages("stop-early"));
    EXPECT_EQ(a.status, 400) << a.body;
    const json ja = json::parse(a.body, nullptr, false);
    EXPECT_EQ(ja["type"], "error") << a.body;
    EXPECT_EQ(ja["error"]["message"], "The answer broke the test policy.");
}

TEST_F(StreamFilterTest, AFilterThatHoldsBackPastItsDeclaredLimitStopsTheStream) {
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("greedy"));
    EXPECT_EQ(r.status, 500) << r.body;
    const json j = json::parse(r.body, nullptr, false);
    EXPECT_EQ(j["error"]["code"], "stream_filter_error") << r.body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find("test-stream"), std::string::npos);
    EXPECT_EQ(up.request_count(), 1u);
}

TEST(StreamFilterAnthropic, AnAnthropicStreamIsDecodedAndReEncodedWhenAFilterRuns) {
    MockUpstream up;  // answers /v1/messages in Anthropic's wire format
    auto filters = std::make_shared<StreamFilters>();
    Gateway gw("providers:\n  claude:\n    kind: anthropic\n    base_url: \"http://127.0.0.1:" +
                   std::to_string(up.port()) +
                   "\"\n    api_key: \"sk-ant\"\n    default_max_tokens: 100\n"
                   "routes:\n  - model: \"*\"\n    targets: [{provider: claude}]\n",
               {filters});
    Client c(gw.port());
    const std::string said =
        R"(,"max_tokens":64,"stream":true,"messages":[{"role":"user","content":"a secret b"}]})";
    const auto plain = c.post_json("/v1/messages", R"({"model":"plain")" + said);
    ASSERT_EQ(plain.status, 200) << plain.body;
    EXPECT_NE(plain.body.find("secret"), std::string::npos) << "passed through: " << plain.body;
    const auto r = c.post_json("/v1/messages", R"({"model":"rewrite")" + said);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body.find("secret"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("[redacted]"), std::string::npos);
    EXPECT_NE(r.body.find("\"output_tokens\":"), std::string::npos);
    EXPECT_NE(r.body.find("event: message_stop"), std::string::npos);
    const auto o = c.post_json(
        "/v1/chat/completions",
        R"({"model":"rewrite","stream":true,"messages":[{"role":"user","content":"a secret b"}]})");
    ASSERT_EQ(o.status, 200) << o.body;
    EXPECT_EQ(o.body.find("secret"), std::string::npos) << o.body;
    EXPECT_NE(o.body.find("[redacted]"), std::string::npos);
    EXPECT_NE(o.body.find("data: [DONE]"), std::string::npos);
}

}  // namespace
}  // namespace sluice::test
