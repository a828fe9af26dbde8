#pragma once

// A small blocking HTTP/1.1 client for tests, built on Boost.Beast (independent of sluice's
// parser). Every socket operation has a receive timeout so a broken test cannot hang.

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>

namespace sluice::test {

struct HttpResponse {
    int status = 0;
    std::map<std::string, std::string> headers;  ///< lower-case names
    std::string body;
    bool keep_alive = true;
    std::string header(const std::string& name) const;
};

class Client {
public:
    explicit Client(std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(15));
    ~Client();

    HttpResponse request(const std::string& method, const std::string& target, const std::string& body = {},
                         const std::vector<std::pair<std::string, std::string>>& headers = {});
    HttpResponse post_json(const std::string& target, const std::string& body,
                           const std::vector<std::pair<std::string, std::string>>& headers = {});

    /// Sends raw bytes.
    void send_raw(const std::string& bytes);
    /// Reads whatever arrives until `until` appears, EOF, or the timeout. Returns what was read.
    std::string read_until(const std::string& until, std::chrono::milliseconds timeout);
    /// Why the last read_until stopped early ("" when it found its text or timed out).
    const std::string& last_read_error() const { return last_read_error_; }
    /// Reads until the peer closes (or the timeout); returns everything read.
    std::string read_all(std::chrono::milliseconds timeout);
    /// True when the peer closed the connection (a read returns EOF within `wait`).
    bool closed_by_peer(std::chrono::milliseconds wait = std::chrono::milliseconds(2000));
    void close();

private:
    boost::asio::io_context io_;
    boost::asio::ip::tcp::socket socket_;
    boost::beast::flat_buffer buffer_;
    std::string last_read_error_;
    std::string pending_;
};

/// Parses an SSE body into the payloads of its `data:` lines.
std::vector<std::string> sse_data(const std::string& body);

/// Decodes a raw chunked HTTP response (head + chunked body) into its body; sets `complete`
/// when the terminating zero-size chunk was seen.
std::string dechunk(const std::string& raw, bool& complete);

}  // namespace sluice::test
