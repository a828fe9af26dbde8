// The HTTP/1.1 client side of one upstream request on a pooled connection.
#include "proxy/upstream_exchange.hpp"

#include <algorithm>

#include <boost/asio/ssl/error.hpp>

#include "routing/select.hpp"
#include "util/strings.hpp"
#include "util/url.hpp"

#include <sluice/clock.hpp>
#include <sluice/version.hpp>

namespace sluice::proxy {

namespace {

using std::chrono::milliseconds;

std::string request_head(const UpstreamSettings& s, const UpstreamRequest& req, std::string_view request_id) {
    std::string h;
    h.reserve(256 + req.target.size());
    h += req.method;
    h += ' ';
    h += req.target;
    h += " HTTP/1.1\r\nHost: ";
    h += host_header(s);
    h += "\r\nUser-Agent: sluice/";
    h += kVersion;
    h += "\r\nAccept-Encoding: identity\r\n";
    if (req.method != "GET") {
        if (!req.content_type.empty()) {
            h += "Content-Type: ";
            h += req.content_type;
            h += "\r\n";
        }
        h += "Content-Length: ";
        h += std::to_string(req.body.size());
        h += "\r\n";
    }
    for (const auto& [k, v] : req.headers) {
        h += k;
        h += ": ";
        h += v;
        h += "\r\n";
    }
    if (!request_id.empty()) {
        h += "x-request-id: ";
        h += request_id;
        h += "\r\n";
    }
    h += "\r\n";
    return h;
}

/// Checks what sluice is about to write upstream: an origin-form target and header lines with
/// no CR, LF or NUL. The translators already encode every client value; this is the last line
/// of defence that makes request splitting impossible whatever a future translator forgets.
std::optional<GatewayError> check_upstream_request(const Provider& provider, const UpstreamRequest& req,
                                                   std::string_view request_id) {
    const auto refuse = [&provider](std::string what) {
        GatewayError e = GatewayError::bad_request(
            "The request cannot be sent to provider '" + provider.name() + "': " + std::move(what),
            "invalid_value");
        return e;
    };
    if (!valid_request_target(req.target)) {
        return refuse("its upstream path would contain characters outside RFC 3986.");
    }
    if (!valid_header_value(req.content_type) || !valid_header_value(request_id)) {
        return refuse("a header value contains a control character.");
    }
    for (const auto& [k, v] : req.headers) {
        if (!valid_header_name(k) || !valid_header_value(v)) {
            return refuse("header '" + (valid_header_name(k) ? k : std::string("?")) +
                          "' has an invalid name or value.");
        }
    }
    return std::nullopt;
}

ExchangeError failure(GatewayError e, FailKind kind) {
    return ExchangeError{std::move(e), kind};
}

}  // namespace

AttemptTimeouts provider_timeouts(const UpstreamSettings& s) {
    return AttemptTimeouts{s.connect_timeout, s.first_byte_timeout, s.first_token_timeout, s.idle_timeout,
                           s.request_timeout};
}

bool is_eof(const error_code& ec) {
    return ec == net::error::eof;
}

GatewayError client_gone_error() {
    GatewayError e;
    e.status = 499;
    e.code = "client_closed_request";
    e.message = "The client closed the connection.";
    e.source = ErrorSource::downstream;
    return e;
}

BodyReader::BodyReader(const http1::MessageHead& head) {
    if (head.status == 204 || head.status == 304) {
        mode_ = Mode::none;
    } else if (head.chunked) {
        mode_ = Mode::chunked;
    } else if (head.content_length) {
        mode_ = Mode::length;
        remaining_ = *head.content_length;
    } else {
        mode_ = Mode::eof;
    }
}

bool BodyReader::consume(std::string& in, std::string& out) {
    switch (mode_) {
        case Mode::none: return true;
        case Mode::length: {
            const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size()));
            out.append(in, 0, take);
            in.erase(0, take);
            remaining_ -= take;
            finished_ = remaining_ == 0;
            return true;
        }
        case Mode::chunked: {
            const auto used = chunked_.feed(in, out);
            if (chunked_.failed()) {
                return false;
            }
            in.erase(0, used);
            finished_ = chunked_.done();
            return true;
        }
        case Mode::eof:
            out += in;
            in.clear();
            return true;
    }
    return true;
}

void BodyReader::on_eof() {
    if (mode_ == Mode::eof) {
        finished_ = true;
    }
}

net::awaitable<error_code> read_more(UpstreamConnection& conn) {
    auto [ec, n] = co_await conn.read_into(conn.inbuf);
    if (!ec && n == 0) {
        ec = net::error::eof;
    }
    co_return n > 0 ? error_code{} : ec;
}

UpstreamExchange::UpstreamExchange(Worker& worker, const Runtime& rt, ClientLink* link,
                                   const Provider& provider)
    : worker_(worker), rt_(rt), link_(link), provider_(provider) {}

UpstreamExchange::~UpstreamExchange() {
    drop();
}

void UpstreamExchange::drop() {
    if (conn_) {
        if (link_ != nullptr && link_->upstream == conn_.get()) {
            link_->upstream = nullptr;
        }
        conn_.reset();
        worker_.pool().release_slot(key_id_);
    }
}

void UpstreamExchange::keep() {
    if (conn_) {
        if (link_ != nullptr && link_->upstream == conn_.get()) {
            link_->upstream = nullptr;
        }
        worker_.pool().put_idle(std::move(conn_));
    }
}

std::optional<ExchangeError> UpstreamExchange::stopped() const {
    if (link_ != nullptr && link_->gone) {
        return failure(client_gone_error(), FailKind::client_gone);
    }
    if (link_ != nullptr && link_->drain_abort) {
        return failure(GatewayError::draining(), FailKind::other);
    }
    return std::nullopt;
}

net::awaitable<std::optional<ExchangeError>> UpstreamExchange::send(const UpstreamRequest& req,
                                                                    std::string request_id,
                                                                    Clock::time_point deadline,
                                                                    AttemptTimeouts t) {
    const UpstreamSettings& s = provider_.settings();
    PoolKey key;
    key.tls = s.tls;
    key.host = s.host;
    key.port = s.port;
    auto* tls = rt_.tls_context(&provider_);
    key.tls_context = tls;
    key_id_ = key.id();
    if (auto bad = check_upstream_request(provider_, req, request_id)) {
        co_return failure(std::move(*bad), FailKind::other);
    }
    const std::string out_head = request_head(s, req, request_id);

    for (int attempt = 0; attempt < 2; ++attempt) {
        drop();
        const auto connect_timeout = std::chrono::duration_cast<milliseconds>(t.connect);
        auto acquired =
            co_await worker_.pool().acquire(key_id_, s.max_connections, s.pool_idle_timeout, connect_timeout);
        if (link_ != nullptr && link_->gone) {
            if (acquired.idle) {
                worker_.pool().put_idle(std::move(acquired.idle));
            } else if (acquired.ok) {
                worker_.pool().release_slot(key_id_);
            }
            co_return failure(client_gone_error(), FailKind::client_gone);
        }
        if (!acquired.ok) {
            co_return failure(
                GatewayError::overloaded("All " + std::to_string(s.max_connections) +
                                         " connections to provider '" + provider_.name() + "' are busy."),
                FailKind::connect);
        }
        const bool reused = acquired.idle != nullptr;
        conn_ = reused ? std::move(acquired.idle)
                       : std::make_unique<UpstreamConnection>(worker_.io().get_executor(), key, tls);
        UpstreamConnection& conn = *conn_;
        if (link_ != nullptr) {
            link_->upstream = &conn;  // the client leaving cancels the exchange
        }
        if (!reused) {
            if (auto err = co_await connect(connect_timeout)) {
                co_return err;
            }
        }
        conn.mark_used();
        conn.deadline().expires_at(std::min(Clock::now() + t.first_byte, deadline));
        auto [wec, written] = co_await conn.write(out_head, req.body);
        if (wec) {
            if (reused && attempt == 0 && !conn.deadline().expired() && (link_ == nullptr || !link_->gone)) {
                continue;  // a stale keep-alive connection: once more on a fresh one
            }
            co_return write_failed(wec);
        }
        // The first-byte timer starts once the request is out.
        sent_at_ = Clock::now();
        head_deadline_ = std::min(sent_at_ + t.first_byte, deadline);
        conn.deadline().expires_at(head_deadline_);
        bool retry_fresh = false;
        auto err = co_await read_head(reused && attempt == 0, retry_fresh);
        if (retry_fresh) {
            continue;
        }
        co_return err;
    }
    co_return failure(GatewayError::upstream_error("Provider '" + provider_.name() + "' is unreachable."),
                      FailKind::connect);
}

ExchangeError UpstreamExchange::write_failed(const error_code& ec) const {
    if (link_ != nullptr && link_->gone) {
        return failure(client_gone_error(), FailKind::client_gone);
    }
    if (conn_->deadline().expired()) {
        return failure(GatewayError::upstream_timeout("Timed out sending the request to provider '" +
                                                      provider_.name() + "'."),
                       FailKind::timeout);
    }
    return failure(GatewayError::upstream_error("Sending the request to provider '" + provider_.name() +
                                                "' failed: " + ec.message()),
                   FailKind::connect);
}

net::awaitable<std::optional<ExchangeError>> UpstreamExchange::connect(
    std::chrono::milliseconds connect_timeout) {
    UpstreamConnection& conn = *conn_;
    worker_.pool().note_opened();
    worker_.opened_total.fetch_add(1, std::memory_order_relaxed);
    const auto [ec, stage] = co_await conn.connect(connect_timeout);
    if (ec) {
        const UpstreamSettings& s = provider_.settings();
        const std::string where =
            "provider '" + provider_.name() + "' (" + s.host + ":" + std::to_string(s.port) + ")";
        if (link_ != nullptr && link_->gone) {
            co_return failure(client_gone_error(), FailKind::client_gone);
        }
        if (ec == net::error::timed_out) {
            co_return failure(GatewayError::upstream_timeout("Timed out connecting to " + where + "."),
                              FailKind::timeout);
        }
        if (std::string_view(stage) == "tls") {
            co_return failure(
                GatewayError::upstream_tls_error("TLS handshake with " + where + " failed: " + ec.message()),
                FailKind::connect);
        }
        co_return failure(GatewayError::upstream_connect_failed("Could not connect to " + where + " (" +
                                                                stage + "): " + ec.message()),
                          FailKind::connect);
    }
    co_return std::nullopt;
}

net::awaitable<std::optional<ExchangeError>> UpstreamExchange::read_head(bool may_retry_fresh,
                                                                         bool& retry_fresh) {
    UpstreamConnection& conn = *conn_;
    http1::HeadLimits limits;
    limits.max_head_bytes = 64 * 1024;
    limits.max_headers = 200;
    bool any_byte = !conn.inbuf.empty();
    http1::HeadScan scan;  // a head trickling in is scanned once, not per read
    while (true) {
        std::size_t consumed = 0;
        http1::ParseError perr;
        const auto st = http1::parse_response_head(conn.inbuf, limits, head_, consumed, perr, &scan);
        if (st == http1::ParseStatus::done) {
            conn.inbuf.erase(0, consumed);
            scan = {};
            if (head_.status >= 100 && head_.status < 200) {
                if (head_.status == 101) {
                    co_return failure(GatewayError::upstream_error("Provider '" + provider_.name() +
                                                                   "' tried to switch protocols."),
                                      FailKind::other);
                }
                continue;  // 100 Continue, 103 Early Hints: wait for the real answer
            }
            co_return std::nullopt;
        }
        if (st == http1::ParseStatus::error) {
            co_return failure(GatewayError::upstream_error("Provider '" + provider_.name() +
                                                           "' sent an invalid response: " + perr.message),
                              FailKind::other);
        }
        const error_code ec = co_await read_more(conn);
        if (auto stop = stopped()) {
            co_return stop;
        }
        if (ec) {
            if (conn.deadline().expired()) {
                co_return failure(
                    GatewayError::upstream_timeout(
                        "Provider '" + provider_.name() + "' did not answer within " +
                        std::to_string(
                            std::chrono::duration_cast<milliseconds>(head_deadline_ - sent_at_).count()) +
                        " ms."),
                    FailKind::timeout);
            }
            if (!any_byte && may_retry_fresh) {
                retry_fresh = true;
                co_return std::nullopt;
            }
            co_return failure(GatewayError::upstream_error("Provider '" + provider_.name() +
                                                           "' closed the connection before answering."),
                              any_byte ? FailKind::other : FailKind::reset);
        }
        any_byte = true;
    }
}

net::awaitable<std::optional<ExchangeError>> UpstreamExchange::read_body(std::size_t max_bytes,
                                                                         std::string& body) {
    UpstreamConnection& conn = *conn_;
    BodyReader reader(head_);
    reusable_ = false;
    while (true) {
        if (!reader.consume(conn.inbuf, body)) {
            co_return failure(GatewayError::upstream_error("Provider '" + provider_.name() +
                                                           "' sent a malformed chunked body."),
                              FailKind::other);
        }
        if (body.size() > max_bytes) {
            co_return failure(
                GatewayError::upstream_error("The answer of provider '" + provider_.name() + "' exceeds " +
                                                 std::to_string(max_bytes) + " bytes.",
                                             "upstream_response_too_large"),
                FailKind::other);
        }
        if (reader.done()) {
            break;
        }
        const error_code ec = co_await read_more(conn);
        if (auto stop = stopped()) {
            co_return stop;
        }
        if (ec) {
            if (conn.deadline().expired()) {
                co_return failure(GatewayError::upstream_timeout("Provider '" + provider_.name() +
                                                                 "' did not finish its answer in time."),
                                  FailKind::other);
            }
            if (is_eof(ec) && reader.until_eof()) {
                reader.on_eof();
                break;
            }
            // Never a truncated 200.
            co_return failure(GatewayError::upstream_error(
                                  "Provider '" + provider_.name() + "' closed the connection mid-answer.",
                                  "upstream_disconnect"),
                              FailKind::other);
        }
    }
    reusable_ = head_.keep_alive && !reader.until_eof() && conn.inbuf.empty();
    co_return std::nullopt;
}

namespace {
/// An upstream head's fields, as providers read them.
class HeadFields final : public HeaderView {
public:
    explicit HeadFields(const http1::MessageHead& h) : h_(h) {}
    std::string_view find(std::string_view name) const noexcept override { return h_.find(name); }

private:
    const http1::MessageHead& h_;
};
}  // namespace

GatewayError error_from_response(const Provider& provider, const http1::MessageHead& head,
                                 const std::string& body, std::optional<Clock::duration>& retry_after) {
    ProviderError pe = provider.translate_error(head.status, HeadFields(head), body,
                                                unix_seconds(std::chrono::system_clock::now()));
    GatewayError err = std::move(pe.error);
    const auto ra_header = head.find("retry-after");
    const auto pause = pe.retry_after;
    retry_after.reset();
    if (pause) {
        retry_after = *pause;
    }
    if (!ra_header.empty() && ra_header.size() < 64) {
        err.retry_after = std::string(ra_header);  // passed on as the provider wrote it
    } else if (pause) {
        err.retry_after = std::to_string((pause->count() + 999) / 1000);  // whole seconds, rounded up
    }
    return err;
}

bool content_type_is(std::string_view content_type, std::string_view expected) {
    return content_type.size() >= expected.size() &&
           iequals(content_type.substr(0, expected.size()), expected);
}

}  // namespace sluice::proxy
