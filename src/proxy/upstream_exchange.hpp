#pragma once

// The upstream exchange: the HTTP/1.1 client side of one request to a provider, on a pooled
// connection. Its vocabulary: send (connect or reuse, write, read the head), head, read_body,
// keep (back to the pool after a complete keep-alive answer). Knows nothing of routing or the
// client's dialect.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <sluice/provider.hpp>

#include "http/http_parser.hpp"
#include "net/asio.hpp"
#include "proxy/outcome.hpp"
#include "server/server.hpp"

namespace sluice::proxy {

/// The timeouts of one attempt: the target's, else the route's, else the provider's.
struct AttemptTimeouts {
    Clock::duration connect;
    Clock::duration first_byte;
    Clock::duration first_token;  ///< zero = off
    Clock::duration idle;
    Clock::duration request;
};
AttemptTimeouts provider_timeouts(const UpstreamSettings& s);

/// Why an exchange step stopped: the error for the client and what it means for the retry
/// policy (FailKind::client_gone when the client left meanwhile).
struct ExchangeError {
    GatewayError error;
    FailKind kind = FailKind::other;
};

/// Decodes a response body as it arrives (Content-Length, chunked, or until EOF).
class BodyReader {
public:
    explicit BodyReader(const http1::MessageHead& head);
    bool done() const { return mode_ == Mode::none || finished_; }
    bool until_eof() const { return mode_ == Mode::eof; }
    /// Moves payload from `in` to `out`; false on a framing error.
    bool consume(std::string& in, std::string& out);
    /// The peer closed: for EOF-delimited bodies that is the end.
    void on_eof();

private:
    enum class Mode {
        none,
        length,
        chunked,
        eof
    };
    Mode mode_ = Mode::eof;
    std::uint64_t remaining_ = 0;
    bool finished_ = false;
    http1::ChunkedDecoder chunked_;
};

/// Reads more bytes from the upstream into conn.inbuf (an empty read is EOF).
net::awaitable<error_code> read_more(UpstreamConnection& conn);

/// A clean end of the upstream's byte stream. A TLS stream cut without close_notify is not one.
bool is_eof(const error_code& ec);

class UpstreamExchange {
public:
    /// `link` is the client whose leaving cancels the exchange (null for health checks and
    /// model lists); `rt` is the snapshot `provider` belongs to (its TLS context).
    UpstreamExchange(Worker& worker, const Runtime& rt, ClientLink* link, const Provider& provider);
    ~UpstreamExchange();
    UpstreamExchange(const UpstreamExchange&) = delete;
    UpstreamExchange& operator=(const UpstreamExchange&) = delete;

    /// Opens or reuses a connection, sends the request and reads the response head (1xx
    /// skipped). A reused connection that fails before any response byte is retried once on a
    /// fresh one. On success head() and connection() are valid.
    net::awaitable<std::optional<ExchangeError>> send(const UpstreamRequest& req, std::string request_id,
                                                      Clock::time_point deadline, AttemptTimeouts t);
    const http1::MessageHead& head() const noexcept { return head_; }
    UpstreamConnection& connection() noexcept { return *conn_; }
    /// Reads the whole body (at most `max_bytes`) under the connection's current deadline.
    /// Remembers whether the connection may be reused.
    net::awaitable<std::optional<ExchangeError>> read_body(std::size_t max_bytes, std::string& body);
    /// Returns the connection to the pool (only after a complete keep-alive answer with nothing
    /// left over); without it the destructor closes the connection and frees its slot.
    void keep();
    /// Whether the body just read left the connection reusable.
    bool reusable() const noexcept { return reusable_; }

private:
    /// Connects the fresh connection in conn_ (DNS, TCP, TLS) under `connect_timeout`.
    net::awaitable<std::optional<ExchangeError>> connect(std::chrono::milliseconds connect_timeout);
    /// What a failed write of the request means: the client left, a timeout, or a send error.
    ExchangeError write_failed(const error_code& ec) const;
    net::awaitable<std::optional<ExchangeError>> read_head(bool may_retry_fresh, bool& retry_fresh);
    void drop();
    std::optional<ExchangeError> stopped() const;

    Worker& worker_;
    const Runtime& rt_;
    ClientLink* link_;
    const Provider& provider_;
    std::unique_ptr<UpstreamConnection> conn_;
    std::string key_id_;
    http1::MessageHead head_;
    Clock::time_point sent_at_{};
    Clock::time_point head_deadline_{};
    bool reusable_ = false;
};

/// The provider's error, translated, with the client's Retry-After header and the pause the
/// provider asked for (`retry-after-ms`, `x-ms-retry-after-ms`, else `Retry-After`).
GatewayError error_from_response(const Provider& provider, const http1::MessageHead& head,
                                 const std::string& body, std::optional<Clock::duration>& retry_after);

/// Whether a Content-Type starts with `expected` (case-insensitive).
bool content_type_is(std::string_view content_type, std::string_view expected);

/// The error for a client that left.
GatewayError client_gone_error();

}  // namespace sluice::proxy
