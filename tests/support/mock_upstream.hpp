#pragma once

// An OpenAI-compatible upstream for tests and benchmarks, written with Boost.Beast (an HTTP
// implementation independent of sluice's own parser). It answers with the deterministic mock
// generator and obeys fault directives in the request body's "mock" object, which sluice
// forwards untouched like any unknown field:
//   {"mock": {"status": 429, "retry_after": "2", "retry_after_ms": 300, "message": "...",
//             "delay_ms": 500, "chunk_delay_ms": 10, "cut_after": 3, "black_hole": true,
//             "content": "fixed text", "chunks": 100, "json_for_stream": true,
//             "close": true, "no_done": true, "eof_body": true, "drop_next": true,
//             "interim": true, "redirect": 302, "long_line": 2000000,
//             "headers": {"x-ms-retry-after-ms": "900"}}}   (headers: on error answers)
// drop_next answers normally (keep-alive), then closes the connection on its next request
// without a byte of answer (a stale pooled connection).
// POST /v1/messages answers in Anthropic's wire format (see mock_anthropic.hpp).
// It records every request and counts accepted connections.

#include <atomic>
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
    std::string header(const std::string& name) const;  ///< case-insensitive, "" if absent
};

struct MockUpstreamOptions {
    std::string cert_file;  ///< PEM; both set = TLS
    std::string key_file;
    std::uint16_t port = 0;
    int threads = 1;
    std::string address = "127.0.0.1";
    bool record = true;     ///< keep requests (benchmarks turn it off)
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
    /// the connection closes. For golden fixtures and malformed answers.
    void enqueue_raw(std::string bytes);

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::test
