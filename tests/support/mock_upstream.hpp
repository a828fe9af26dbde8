#pragma once

// An OpenAI-compatible upstream for tests and benchmarks, written with Boost.Beast (an HTTP
// implementation independent of sluice's own parser). It answers with the deterministic mock
// generator and obeys fault directives in the request body's "mock" object, which sluice
// forwards untouched like any unknown field:
//   {"mock": {"status": 429, "retry_after": "2", "retry_after_ms": 300, "message": "...",
//             "delay_ms": 500, "chunk_delay_ms": 10, "first_event_delay_ms": 800, "cut_after": 3,
//             "black_hole": true, "content": "fixed text", "chunks": 100, "json_for_stream": true, "close":
//             true, "hang_up": true, "no_done": true, "eof_body": true, "drop_next": true, "interim": true,
//             "redirect": 302, "long_line": 2000000, "data_lines_mb": 300, "headers": {"x-ms-retry-after-ms":
//             "900"}}}   (headers: on error answers)
// drop_next answers normally (keep-alive), then closes the connection on its next request
// without a byte of answer (a stale pooled connection).
// POST /v1/messages answers in Anthropic's wire format (see mock_anthropic.hpp).
// Fault scripts set the same directives from the test instead of the body, so one request body
// can meet different behaviour at different upstreams: script() for the next N requests,
// set_cycle() for a repeating pattern (a flapping target), set_default() for every request.
// Scripted keys override the body's.
// It records every request (with its arrival time) and counts accepted connections.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::test {

struct RecordedRequest {
    std::string method;
    std::string target;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::chrono::steady_clock::time_point at;           ///< when the request head arrived
    std::string header(const std::string& name) const;  ///< case-insensitive, "" if absent
};

struct MockUpstreamOptions {
    std::string cert_file;  ///< PEM; both set = TLS
    std::string key_file;
    std::uint16_t port = 0;
    int threads = 1;
    std::string address = "127.0.0.1";
    bool record = true;  ///< keep requests (benchmarks turn it off)
};

class MockUpstream {
public:
    explicit MockUpstream(MockUpstreamOptions opts = {});
    ~MockUpstream();
    MockUpstream(const MockUpstream&) = delete;
    MockUpstream& operator=(const MockUpstream&) = delete;

    std::uint16_t port() const;
    bool tls() const;
    std::string base_url() const;  ///< http(s)://127.0.0.1:port/v1

    std::size_t connections() const;
    std::size_t open_connections() const;
    std::vector<RecordedRequest> requests() const;
    std::size_t request_count() const;
    void clear();
    void stop();
    /// The next request is answered with exactly these bytes (status line, headers, body), then
    /// the connection closes. For golden fixtures and malformed answers. Over TLS the close
    /// comes without close_notify (a truncation) unless `close_notify` is set.
    void enqueue_raw(std::string bytes, bool close_notify = false);
    /// The next `count` requests get these directives (a JSON object's text, e.g.
    /// R"({"status":500})"); queued scripts run in order.
    void script(std::string directives, int count = 1);
    /// After the queued scripts, request i gets cycle[i % size] ("{}" = behave normally).
    void set_cycle(std::vector<std::string> cycle);
    /// Directives for every request not covered by script() or set_cycle(); "" clears.
    void set_default(std::string directives);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::test
