// The client-facing side: framing hardening, limits, timeouts, pipelining and drain.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <thread>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_upstream.hpp"
#include "sluice_process.hpp"

namespace sluice::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using namespace std::string_literals;

std::string mock_config(const std::string& server = "") {
    return "server:\n  max_header_bytes: 4096\n  max_body_bytes: 65536\n  header_timeout: 1s\n"
           "  idle_timeout: 2s\n  body_timeout: 1s\n" +
           server +
           "providers:\n  mock: {kind: mock}\nroutes:\n  - model: \"*\"\n    targets: [{provider: mock}]\n";
}

const std::string kChat = R"({"model":"mock-gpt-4o","messages":[{"role":"user","content":"hi"}]})";

std::string post(const std::string& extra_headers, const std::string& body) {
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
           extra_headers + "\r\n" + body;
}

int status_of(const std::string& raw) {
    return raw.size() > 12 ? std::stoi(raw.substr(9, 3)) : 0;
}

class Downstream : public ::testing::Test {
protected:
    Gateway gw{mock_config()};
};

void expect_400_and_close(std::uint16_t port, const std::string& raw) {
    Client c(port);
    c.send_raw(raw);
    const auto got = c.read_all(3s);
    EXPECT_EQ(status_of(got), 400) << raw << "\n---\n" << got;
    EXPECT_NE(got.find("Connection: close"), std::string::npos);
    EXPECT_NE(got.find("\"error\""), std::string::npos);
}

TEST_F(Downstream, A1_ContentLengthWithChunkedIsRejected) {
    const std::string len = std::to_string(kChat.size());
    expect_400_and_close(gw.port(),
                         post("Content-Length: " + len + "\r\nTransfer-Encoding: chunked\r\n", kChat));
    expect_400_and_close(gw.port(),
                         post("Transfer-Encoding: chunked\r\nContent-Length: " + len + "\r\n", kChat));
    expect_400_and_close(gw.port(),
                         post("Transfer-Encoding : chunked\r\nContent-Length: " + len + "\r\n", kChat));
    // The bytes after a rejected head are never parsed as a second request.
    Client c(gw.port());
    c.send_raw(post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                    "0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
    const auto got = c.read_all(2s);
    EXPECT_EQ(got.find("\"status\":\"ok\""), std::string::npos) << got;
}

TEST_F(Downstream, A2_OddTransferEncodingIsRejected) {
    expect_400_and_close(gw.port(), post("Transfer-Encoding: gzip\r\n", kChat));
    expect_400_and_close(gw.port(), post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"));
    expect_400_and_close(gw.port(),
                         "POST /v1/chat/completions HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
}

TEST_F(Downstream, A3_DuplicateOrBadContentLengthIsRejected) {
    expect_400_and_close(gw.port(), post("Content-Length: 3\r\nContent-Length: 3\r\n", "abc"));
    expect_400_and_close(gw.port(), post("Content-Length: +3\r\n", "abc"));
    expect_400_and_close(gw.port(), post("Content-Length: \r\n", "abc"));
}

TEST_F(Downstream, A4_BadChunkSizeIsRejected) {
    expect_400_and_close(gw.port(),
                         post("Transfer-Encoding: chunked\r\n", "ffffffffffffffff1\r\nx\r\n0\r\n\r\n"));
    expect_400_and_close(gw.port(), post("Transfer-Encoding: chunked\r\n", "0x5\r\nhello\r\n0\r\n\r\n"));
    expect_400_and_close(gw.port(), post("Transfer-Encoding: chunked\r\n", "5\nhello\r\n0\r\n\r\n"));
}

TEST_F(Downstream, A5_MalformedHeadersAreRejected) {
    expect_400_and_close(gw.port(), "GET /healthz HTTP/1.1\nHost: x\n\n");
    expect_400_and_close(gw.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n");
    expect_400_and_close(gw.port(), "GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n");
    expect_400_and_close(gw.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX_Y: z\r\n\r\n");
    expect_400_and_close(gw.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"s);
}

TEST_F(Downstream, ChunkedRequestBodiesAreAccepted) {
    Client c(gw.port());
    char size[16];
    std::snprintf(size, sizeof size, "%zx", kChat.size());
    c.send_raw(post("Transfer-Encoding: chunked\r\n", std::string(size) + "\r\n" + kChat + "\r\n0\r\n\r\n"));
    EXPECT_EQ(status_of(c.read_until("}}", 3s)), 200);
}

TEST_F(Downstream, A6_OversizedHeaderGets431) {
    Client c(gw.port());
    c.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8000, 'a') + "\r\n\r\n");
    const auto got = c.read_all(3s);
    EXPECT_EQ(status_of(got), 431) << got;
    Client c2(gw.port());
    c2.send_raw("GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(status_of(c2.read_all(3s)), 414);
}

TEST_F(Downstream, A7_OversizedBodyGets413BeforeItIsRead) {
    Client c(gw.port());
    // Expect: 100-continue with an over-limit length: 413, no 100 Continue.
    c.send_raw(post("Content-Length: 1000000\r\nExpect: 100-continue\r\n", ""));
    const auto got = c.read_all(3s);
    EXPECT_EQ(status_of(got), 413) << got;
    EXPECT_EQ(got.find("100 Continue"), std::string::npos);
    // Chunked: 413 once the cap is crossed.
    Client c2(gw.port());
    std::string body;
    for (int i = 0; i < 20; ++i) {
        body += "1000\r\n" + std::string(4096, 'a') + "\r\n";
    }
    c2.send_raw(post("Transfer-Encoding: chunked\r\n", body));
    EXPECT_EQ(status_of(c2.read_all(3s)), 413);
}

TEST_F(Downstream, A7_AClientSendingARealOverLimitBodyReceivesThe413NotAReset) {
    // The client sends its 40 KB body after the head and only then reads. Closing at once with
    // that body arriving would reset the connection, and the client's next write fails before
    // it ever reads the 413; the lingering close reads and discards the body instead.
    Gateway small(
        "server:\n  max_body_bytes: 16384\nproviders:\n  mock: {kind: mock}\n"
        "routes:\n  - model: \"*\"\n    targets: [{provider: mock}]\n");
    for (int i = 0; i < 3; ++i) {
        Client c(small.port());
        const std::string body(40000, 'a');
        c.send_raw(post("Content-Length: " + std::to_string(body.size()) + "\r\n", ""));
        std::this_thread::sleep_for(100ms);  // sluice has answered 413 from the head
        // The client is still sending its body, in pieces, as an SDK writes the whole request
        // before it reads: a write into a connection closed with data unread meets a reset.
        for (std::size_t off = 0; off < body.size(); off += 10000) {
            ASSERT_NO_THROW(c.send_raw(body.substr(off, 10000))) << "attempt " << i << " at " << off;
            std::this_thread::sleep_for(30ms);
        }
        const auto got = c.read_all(3s);
        ASSERT_EQ(status_of(got), 413) << "attempt " << i << ": " << got << " / " << c.last_read_error();
        EXPECT_NE(got.find("request_too_large"), std::string::npos);
    }
}

TEST_F(Downstream, ExpectContinueIsHonoured) {
    Client c(gw.port());
    c.send_raw(post("Content-Length: " + std::to_string(kChat.size()) + "\r\nExpect: 100-continue\r\n", ""));
    EXPECT_NE(c.read_until("\r\n\r\n", 2s).find("HTTP/1.1 100 Continue"), std::string::npos);
    c.send_raw(kChat);
    EXPECT_EQ(status_of(c.read_until("}}", 3s)), 200);
}

TEST_F(Downstream, A8_PipelinedRequestsAnsweredInOrder) {
    Client c(gw.port());
    std::string batch;
    for (int i = 0; i < 10; ++i) {
        batch += "GET /healthz HTTP/1.1\r\nHost: x\r\nx-request-id: req-" + std::to_string(i) + "\r\n\r\n";
    }
    c.send_raw(batch);
    const auto got = c.read_until("req-9\r\n", 3s);
    std::size_t pos = 0;
    for (int i = 0; i < 10; ++i) {
        const auto at = got.find("x-request-id: req-" + std::to_string(i) + "\r\n", pos);
        ASSERT_NE(at, std::string::npos) << i;
        pos = at;
    }
}

TEST_F(Downstream, A9_AbsoluteFormIsNotProxied) {
    Client c(gw.port());
    c.send_raw(
        "POST http://169.254.169.254/v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}");
    EXPECT_EQ(status_of(c.read_all(2s)), 400);
    Client c2(gw.port());
    c2.send_raw("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(status_of(c2.read_all(2s)), 400);
}

TEST_F(Downstream, A10_SlowHeadersGet408) {
    Client c(gw.port());
    c.send_raw("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    const auto got = c.read_all(3s);
    EXPECT_EQ(status_of(got), 408) << got;
}

TEST_F(Downstream, A11_SlowBodyGets408) {
    Client c(gw.port());
    c.send_raw(post("Content-Length: 100\r\n", "{\"model\":"));
    EXPECT_EQ(status_of(c.read_all(3s)), 408);
}

TEST_F(Downstream, IdleKeepAliveConnectionIsClosedSilently) {
    Client c(gw.port());
    ASSERT_EQ(c.request("GET", "/healthz").status, 200);
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(c.closed_by_peer(4s));
    EXPECT_GE(std::chrono::steady_clock::now() - start, 1500ms);
}

TEST_F(Downstream, UnknownPathsAndMethods) {
    Client c(gw.port());
    auto r = c.request("GET", "/v1/nope");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(json::parse(r.body)["error"]["type"], "not_found_error");
    r = c.request("GET", "/v1/chat/completions");
    EXPECT_EQ(r.status, 405);
    EXPECT_EQ(r.header("allow"), "POST");
    r = c.post_json("/v1/chat/completions", R"({"model":"x","model":"y"})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "duplicate_key");
    r = c.post_json("/v1/chat/completions", "{not json");
    EXPECT_EQ(json::parse(r.body)["error"]["code"], "invalid_json");
    r = c.post_json("/chat/completions", kChat);  // base_url without /v1
    EXPECT_EQ(r.status, 200);
}

TEST_F(Downstream, RequestIdIsKeptWhenSaneAndGeneratedOtherwise) {
    Client c(gw.port());
    auto r = c.request("GET", "/healthz", "", {{"x-request-id", "abc-123"}});
    EXPECT_EQ(r.header("x-request-id"), "abc-123");
    r = c.request("GET", "/healthz", "", {{"x-request-id", "bad id with spaces"}});
    EXPECT_EQ(r.header("x-request-id").size(), 32u);
}

TEST(Drain, I1_DrainDeadlineEndsOpenStreamsWithAnErrorEvent) {
    MockUpstream up;
    SluiceProcess ch("  threads: 2\n  drain_timeout: 300ms\n",
                     "log:\n  level: warn\nproviders:\n  up:\n    kind: openai\n    base_url: \"" +
                         up.base_url() + "\"\nroutes:\n  - model: \"*\"\n    targets: [{provider: up}]\n");
    EXPECT_TRUE(ch.ready());
    Client stream(ch.port());
    const std::string body =
        R"({"model":"m","stream":true,"messages":[{"role":"user","content":"a b c d e f g h i j k l m n o p"}],"mock":{"chunk_delay_ms":200}})";
    stream.send_raw(post("Content-Length: " + std::to_string(body.size()) + "\r\n", body));
    ASSERT_NE(stream.read_until("data: ", 5s).find("200 OK"), std::string::npos);
    ch.signal(SIGTERM);
    const auto rest = stream.read_until("\r\n0\r\n\r\n", 5s);
    EXPECT_EQ(rest.find("[DONE]"), std::string::npos);
    EXPECT_NE(rest.find("\"code\":\"draining\""), std::string::npos) << rest;
    EXPECT_NE(rest.find("0\r\n\r\n"), std::string::npos);
    EXPECT_EQ(ch.wait_exit(), 0);
}

TEST(Drain, I1_SigtermLetsAnInflightStreamFinish) {
    MockUpstream up;
    SluiceProcess child("  threads: 2\n  drain_timeout: 10s\n",
                        "log:\n  level: warn\nproviders:\n  up:\n    kind: openai\n    base_url: \"" +
                            up.base_url() + "\"\nroutes:\n  - model: \"*\"\n    targets: [{provider: up}]\n");
    ASSERT_TRUE(child.ready());
    const std::uint16_t port = child.port();
    Client stream(port);
    const std::string body =
        R"({"model":"m","stream":true,"messages":[{"role":"user","content":"one two three four five six seven eight"}],"mock":{"chunk_delay_ms":100}})";
    stream.send_raw(post("Content-Length: " + std::to_string(body.size()) + "\r\n", body));
    ASSERT_NE(stream.read_until("data: ", 5s).find("200 OK"), std::string::npos);
    Client idle(port);  // an idle keep-alive connection: closed at once by the drain
    ASSERT_EQ(idle.request("GET", "/healthz").status, 200);
    child.signal(SIGTERM);
    const auto rest = stream.read_until("\r\n0\r\n\r\n", 10s);
    EXPECT_NE(rest.find("data: [DONE]"), std::string::npos) << rest;
    EXPECT_TRUE(idle.closed_by_peer(2s));
    EXPECT_EQ(child.wait_exit(), 0);
    EXPECT_THROW(Client refused(port), std::exception);
}

TEST(Drain, I1_ARequestStillUploadingItsBodyAtSigtermIsServed) {
    SluiceProcess child("  threads: 1\n  drain_timeout: 10s\n",
                        "log:\n  level: warn\nproviders:\n  mk:\n    kind: mock\nroutes:\n"
                        "  - model: \"*\"\n    targets: [{provider: mk}]\n");
    ASSERT_TRUE(child.ready());
    Client c(child.port());
    const std::string half = kChat.substr(0, kChat.size() / 2);
    c.send_raw(post("Content-Length: " + std::to_string(kChat.size()) + "\r\n", half));
    std::this_thread::sleep_for(200ms);  // the head is parsed; the body is on its way
    child.signal(SIGTERM);
    std::this_thread::sleep_for(500ms);  // the drain would have ended by now with 0 in flight
    c.send_raw(kChat.substr(half.size()));
    const std::string got = c.read_all(5s);
    EXPECT_EQ(status_of(got), 200) << got;
    EXPECT_NE(got.find("chat.completion"), std::string::npos) << got;
    EXPECT_NE(got.find("Connection: close"), std::string::npos) << got;
    EXPECT_EQ(child.wait_exit(), 0);
}

TEST(Drain, I1_AStreamBlockedOnASlowReaderAtTheDeadlineStillGetsItsTerminalEvent) {
    MockUpstream up;
    // 16 MB of answer: far more than the socket buffers hold while the client does not read.
    std::string content;
    content.reserve(16u << 20);
    while (content.size() < (16u << 20)) {
        content += "abcdefg ";
    }
    up.script(nlohmann::json{{"content", content}, {"chunks", 512}}.dump());
    SluiceProcess ch("  threads: 1\n  drain_timeout: 300ms\n",
                     "log:\n  level: warn\nproviders:\n  up:\n    kind: openai\n    base_url: \"" +
                         up.base_url() + "\"\nroutes:\n  - model: \"*\"\n    targets: [{provider: up}]\n");
    ASSERT_TRUE(ch.ready());
    Client stream(ch.port(), 15s);
    const std::string body = R"({"model":"m","stream":true,"messages":[{"role":"user","content":"x"}]})";
    stream.send_raw(post("Content-Length: " + std::to_string(body.size()) + "\r\n", body));
    // Generous: a sanitizer build takes seconds to generate 16 MB of mock answer.
    ASSERT_NE(stream.read_until("data: ", 30s).find("200 OK"), std::string::npos);
    ch.signal(SIGTERM);
    // The reader stalls well past the drain deadline (300 ms), then reads on.
    std::this_thread::sleep_for(2500ms);
    const auto rest = stream.read_until("\r\n0\r\n\r\n", 15s);
    EXPECT_EQ(rest.find("[DONE]"), std::string::npos);
    EXPECT_NE(rest.find("\"code\":\"draining\""), std::string::npos)
        << rest.substr(rest.size() > 400 ? rest.size() - 400 : 0);
    EXPECT_NE(rest.find("\r\n0\r\n\r\n"), std::string::npos);
    EXPECT_EQ(ch.wait_exit(), 0);
}

}  // namespace
}  // namespace sluice::test
