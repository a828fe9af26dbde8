// Every filter hook, proved with small test-only filters on an in-process sluice: a request
// filter that answers an error and one that serves a 200 (JSON and a replayed stream), a
// response-head filter, upstream request/response hooks, and a completion hook that runs exactly
// once however a request ends (success, early reply, client abort mid-stream, upstream cut,
// drain).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include <sluice/filter.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_upstream.hpp"

namespace sluice::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

/// Rejects model "blocked"; serves model "cached" (JSON) and "cached-stream" (stored events).
class AnsweringFilter final : public Filter {
public:
    static constexpr const char* kStoredEvents =
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
        "\"delta\":{\"content\":\"from the cache\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
        "\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    static constexpr const char* kStoredJson =
        "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
        "{\"role\":\"assistant\",\"content\":\"from the cache\"},\"finish_reason\":\"stop\"}]}";

    std::string_view name() const noexcept override { return "answering"; }
    unsigned hooks() const noexcept override { return request; }
    boost::asio::awaitable<RequestVerdict> on_request(RequestContext& ctx) const override {
        if (ctx.api.model == "blocked") {
            auto e = GatewayError::forbidden("Blocked by the test filter.");
            e.code = "blocked_by_test";
            co_return RequestVerdict::reject(std::move(e));
        }
        if (ctx.api.model == "cached" || ctx.api.model == "cached-stream") {
            ServedResponse r;
            r.stream = ctx.api.model == "cached-stream";
            r.body = r.stream ? kStoredEvents : kStoredJson;
            r.usage.prompt_tokens = 3;
            r.usage.completion_tokens = 4;
            co_return RequestVerdict::serve(std::move(r));
        }
        co_return RequestVerdict::proceed();
    }
};

/// Adds two headers to every answer and tries three it must not be able to add.
class HeaderFilter final : public Filter {
public:
    std::string_view name() const noexcept override { return "headers"; }
    unsigned hooks() const noexcept override { return response_head; }
    void on_response_head(const RequestContext& /*ctx*/, int status, ResponseHeaders& h) const override {
        h.add("x-sluice-cache", "miss");
        h.add("x-ratelimit-remaining-requests", std::to_string(status == 200 ? 9 : 0));
        refused += h.add("Content-Length", "1") ? 0 : 1;
        refused += h.add("x-evil", "a\r\nSet-Cookie: x=1") ? 0 : 1;
        refused += h.add("bad name", "v") ? 0 : 1;
    }
    mutable std::atomic<int> refused{0};
};

/// Adds a header to each upstream request and records the status of each upstream head.
class UpstreamFilter final : public Filter {
public:
    std::string_view name() const noexcept override { return "upstream"; }
    unsigned hooks() const noexcept override { return upstream_request | upstream_response; }
    std::optional<GatewayError> on_upstream_request(RequestContext& ctx, const Target& /*t*/,
                                                    UpstreamRequest& req) const override {
        if (ctx.api.model == "refused-upstream") {
            return GatewayError::bad_request("The test filter refused the attempt.", "refused_by_test");
        }
        req.headers.emplace_back("x-test-tenant", "t1");
        return std::nullopt;
    }
    void on_upstream_response(RequestContext& /*ctx*/, const UpstreamResponseHead& head) const override {
        std::lock_guard lock(mutex);
        statuses.push_back(head.status());
        content_types.emplace_back(head.header("content-type"));
    }
    mutable std::mutex mutex;
    mutable std::vector<int> statuses;
    mutable std::vector<std::string> content_types;
};

/// Counts completions and keeps the last outcome.
class CompletionFilter final : public Filter {
public:
    struct Seen {
        int status = 0;
        std::string error_code;
        bool client_gone = false;
        bool served = false;
        bool stream = false;
        Usage billed;
        std::vector<Attempt> attempts;
        bool first_byte = false;
    };
    std::string_view name() const noexcept override { return "completion"; }
    unsigned hooks() const noexcept override { return complete; }
    void on_complete(const RequestContext& /*ctx*/, const Outcome& o) const override {
        std::lock_guard lock(mutex);
        ++count;
        last.status = o.status;
        last.error_code = std::string(o.error_code);
        last.client_gone = o.client_gone;
        last.served = o.served;
        last.stream = o.stream;
        last.billed = o.billed;
        last.attempts.assign(o.attempts.begin(), o.attempts.end());
        last.first_byte = o.first_byte.has_value();
    }
    /// Waits for `n` completions, then a little longer to catch a second call.
    Seen wait_for(int n) const {
        for (int i = 0; i < 500 && calls() < n; ++i) {
            std::this_thread::sleep_for(10ms);
        }
        std::this_thread::sleep_for(150ms);
        std::lock_guard lock(mutex);
        return last;
    }
    int calls() const {
        std::lock_guard lock(mutex);
        return count;
    }
    mutable std::mutex mutex;
    mutable int count = 0;
    mutable Seen last;
};

std::string config(const MockUpstream& up, const std::string& server = "") {
    return (server.empty() ? "" : "server:\n" + server) +
           "providers:\n  up:\n    kind: openai\n    base_url: \"" + up.base_url() +
           "\"\n    api_key: \"sk-hooks\"\nroutes:\n  - model: \"*\"\n    targets: [{provider: up}]\n";
}

std::string chat(const std::string& model, bool stream = false, const std::string& mock = "{}") {
    return R"({"model":")" + model + R"(","stream":)" + (stream ? "true" : "false") +
           R"(,"messages":[{"role":"user","content":"hi"}],"mock":)" + mock + "}";
}

std::string messages(const std::string& model) {
    return R"({"model":")" + model + R"(","max_tokens":16,"messages":[{"role":"user","content":"hi"}]})";
}

/// Starts a streamed chat request and waits for the answer's head and first event.
void start_stream(Client& c, const std::string& body) {
    c.send_raw(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body);
    ASSERT_NE(c.read_until("data: ", 5s).find("200 OK"), std::string::npos);
}

struct Hooks {
    std::shared_ptr<AnsweringFilter> answering = std::make_shared<AnsweringFilter>();
    std::shared_ptr<HeaderFilter> headers = std::make_shared<HeaderFilter>();
    std::shared_ptr<UpstreamFilter> upstream = std::make_shared<UpstreamFilter>();
    std::shared_ptr<CompletionFilter> completion = std::make_shared<CompletionFilter>();
    std::vector<std::shared_ptr<const Filter>> all() const {
        return {answering, headers, upstream, completion};
    }
};

TEST(Hooks, ARequestFilterAnswersAnErrorInTheClientsDialectBeforeAnyUpstreamCall) {
    MockUpstream up;
    Hooks hooks;
    Gateway gw(config(up), hooks.all());
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("blocked"));
    EXPECT_EQ(r.status, 403);
    const json j = json::parse(r.body, nullptr, false);
    EXPECT_EQ(j["error"]["code"], "blocked_by_test") << r.body;
    EXPECT_EQ(j["error"]["message"], "Blocked by the test filter.");

    const auto a = c.post_json("/v1/messages", messages("blocked"));
    EXPECT_EQ(a.status, 403);
    const json ja = json::parse(a.body, nullptr, false);
    EXPECT_EQ(ja["type"], "error") << a.body;  // Anthropic's shape on its front door
    EXPECT_EQ(ja["error"]["message"], "Blocked by the test filter.");
    EXPECT_EQ(up.request_count(), 0u);
}

TEST(Hooks, ARequestFilterServesAJson200WithoutCallingTheUpstream) {
    MockUpstream up;
    Hooks hooks;
    Gateway gw(config(up), hooks.all());
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("cached"));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, AnsweringFilter::kStoredJson);
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_EQ(r.header("x-sluice-cache"), "miss") << "response-head hooks run on served answers too";
    EXPECT_EQ(up.request_count(), 0u);
    const auto seen = hooks.completion->wait_for(1);
    EXPECT_TRUE(seen.served);
    EXPECT_EQ(seen.billed.completion_tokens, 4);
    EXPECT_TRUE(seen.attempts.empty());
}

TEST(Hooks, ARequestFilterServesAStreamReplayedFromStoredEvents) {
    MockUpstream up;
    Hooks hooks;
    Gateway gw(config(up), hooks.all());
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("cached-stream", true));
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("content-type"), "text/event-stream");
    EXPECT_EQ(r.header("transfer-encoding"), "chunked");
    EXPECT_EQ(r.body, AnsweringFilter::kStoredEvents);
    EXPECT_EQ(up.request_count(), 0u);
}

TEST(Hooks, AResponseHeadFilterAddsHeadersToJsonStreamAndErrorAnswersAndCannotForgeFraming) {
    MockUpstream up;
    Hooks hooks;
    Gateway gw(config(up), hooks.all());
    Client c(gw.port());
    const auto ok = c.post_json("/v1/chat/completions", chat("m"));
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.header("x-sluice-cache"), "miss");
    EXPECT_EQ(ok.header("x-ratelimit-remaining-requests"), "9");
    EXPECT_EQ(ok.header("x-evil"), "");
    EXPECT_EQ(ok.header("set-cookie"), "");
    const auto streamed = c.post_json("/v1/chat/completions", chat("m", true));
    EXPECT_EQ(streamed.status, 200);
    EXPECT_EQ(streamed.header("x-sluice-cache"), "miss");
    EXPECT_NE(streamed.body.find("data: [DONE]"), std::string::npos);
    const auto failed = c.post_json("/v1/chat/completions", chat("m", false, R"({"status":400})"));
    EXPECT_EQ(failed.status, 400);
    EXPECT_EQ(failed.header("x-ratelimit-remaining-requests"), "0");
    EXPECT_EQ(hooks.headers->refused.load(), 9) << "three refusals on each of three answers";
}

TEST(Hooks, UpstreamRequestAndResponseHooksRunOncePerAttempt) {
    MockUpstream up;
    Hooks hooks;
    Gateway gw(config(up), hooks.all());
    up.script(R"({"status":503})");
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("m"));
    ASSERT_EQ(r.status, 200) << r.body;
    const auto reqs = up.requests();
    ASSERT_EQ(reqs.size(), 2u);
    EXPECT_EQ(reqs[0].header("x-test-tenant"), "t1");
    EXPECT_EQ(reqs[1].header("x-test-tenant"), "t1");
    {
        std::lock_guard lock(hooks.upstream->mutex);
        EXPECT_EQ(hooks.upstream->statuses, (std::vector<int>{503, 200}));
        EXPECT_EQ(hooks.upstream->content_types.back(), "application/json");
    }
    const auto seen = hooks.completion->wait_for(1);
    ASSERT_EQ(seen.attempts.size(), 2u);
    EXPECT_EQ(seen.attempts[0].status, 503);
    EXPECT_FALSE(seen.attempts[0].usage.known());
    EXPECT_EQ(seen.attempts[1].status, 200);
    EXPECT_TRUE(seen.attempts[1].usage.known()) << "each attempt carries its own usage";

    const auto refused = c.post_json("/v1/chat/completions", chat("refused-upstream"));
    EXPECT_EQ(refused.status, 400);
    EXPECT_NE(refused.body.find("refused_by_test"), std::string::npos);
    EXPECT_EQ(up.request_count(), 2u) << "a refused attempt sends nothing";
}

TEST(Hooks, CompletionRunsOnceForASuccess) {
    MockUpstream up;
    Hooks hooks;
    Gateway gw(config(up), hooks.all());
    Client c(gw.port());
    ASSERT_EQ(c.post_json("/v1/chat/completions", chat("m", true)).status, 200);
    const auto seen = hooks.completion->wait_for(1);
    EXPECT_EQ(hooks.completion->calls(), 1);
    EXPECT_EQ(seen.status, 200);
    EXPECT_EQ(seen.error_code, "");
    EXPECT_TRUE(seen.stream);
    EXPECT_FALSE(seen.served);
    EXPECT_TRUE(seen.billed.known()) << "stream usage is billed";
    EXPECT_TRUE(seen.first_byte);
    ASSERT_EQ(seen.attempts.size(), 1u);
}

TEST(Hooks, CompletionRunsOnceForAnEarlyReply) {
    MockUpstream up;
    Hooks hooks;
    Gateway gw(config(up), hooks.all());
    Client c(gw.port());
    ASSERT_EQ(c.post_json("/v1/chat/completions", chat("blocked")).status, 403);
    ASSERT_EQ(c.post_json("/v1/chat/completions", "{not json").status, 400);
    const auto seen = hooks.completion->wait_for(2);
    EXPECT_EQ(hooks.completion->calls(), 2);
    EXPECT_EQ(seen.status, 400) << "the built-in route filter's rejection completes too";
    EXPECT_TRUE(seen.served);
    EXPECT_TRUE(seen.attempts.empty());
}

TEST(Hooks, CompletionRunsOnceWhenTheClientLeavesMidStream) {
    MockUpstream up;
    Hooks hooks;
    Gateway gw(config(up), hooks.all());
    {
        Client c(gw.port());
        const std::string body = chat("m", true, R"({"chunks":50,"chunk_delay_ms":50})");
        ASSERT_NO_FATAL_FAILURE(start_stream(c, body));
        c.close();
    }
    const auto seen = hooks.completion->wait_for(1);
    EXPECT_EQ(hooks.completion->calls(), 1);
    EXPECT_EQ(seen.status, 200) << "the head was sent";
    EXPECT_TRUE(seen.client_gone);
}

TEST(Hooks, CompletionRunsOnceWhenTheUpstreamCutsTheStream) {
    MockUpstream up;
    Hooks hooks;
    Gateway gw(config(up), hooks.all());
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions", chat("m", true, R"({"chunks":10,"cut_after":3})"));
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find("upstream_disconnect"), std::string::npos) << r.body;
    const auto seen = hooks.completion->wait_for(1);
    EXPECT_EQ(hooks.completion->calls(), 1);
    EXPECT_EQ(seen.error_code, "upstream_disconnect");
    EXPECT_FALSE(seen.client_gone);
}

TEST(Hooks, CompletionRunsOnceWhenADrainEndsTheStream) {
    MockUpstream up;
    Hooks hooks;
    Gateway gw(config(up, "  drain_timeout: 200ms\n"), hooks.all());
    Client c(gw.port());
    const std::string body = chat("m", true, R"({"chunks":100,"chunk_delay_ms":50})");
    ASSERT_NO_FATAL_FAILURE(start_stream(c, body));
    gw.server().drain();
    const std::string rest = c.read_until("0\r\n\r\n", 5s);
    EXPECT_NE(rest.find("\"code\":\"draining\""), std::string::npos) << rest;
    const auto seen = hooks.completion->wait_for(1);
    EXPECT_EQ(hooks.completion->calls(), 1);
    EXPECT_EQ(seen.error_code, "draining");
}

}  // namespace
}  // namespace sluice::test
