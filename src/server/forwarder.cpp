// The upstream half of a request: connection from the worker's pool, request out, response in,
// relayed to the client as JSON or as SSE event by event.
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>

#include <algorithm>
#include <random>

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/container/small_vector.hpp>
#include <nlohmann/json.hpp>

#include "json/json_dom.hpp"
#include "json/json_reader.hpp"
#include "log/log.hpp"
#include "providers/messages_translate.hpp"
#include "proxy/router.hpp"
#include "routing/health.hpp"
#include "routing/pauses.hpp"
#include "routing/select.hpp"
#include "server/session.hpp"
#include "sse/sse.hpp"
#include "util/strings.hpp"
#include "util/url.hpp"

#include <sluice/version.hpp>

namespace sluice {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t kMaxErrorBody = 256 * 1024;

/// A connection checked out of the pool for one exchange. Destroyed without keep(): closed,
/// its slot freed, never pooled.
struct Lease {
    ConnectionPool* pool = nullptr;
    std::unique_ptr<UpstreamConnection> conn;
    Lease() = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { drop(); }
    void drop() {
        if (conn) {
            const std::string id = conn->key_id();
            conn.reset();
            pool->release_slot(id);
        }
    }
    void keep() { pool->put_idle(std::move(conn)); }
};

/// Registers the upstream connection with the client link for cancel-on-disconnect.
struct CancelHook {
    CancelHook(ClientLink* l, UpstreamConnection* c) : link(l) {
        if (link != nullptr) {
            link->upstream = c;
        }
    }
    ~CancelHook() {
        if (link != nullptr) {
            link->upstream = nullptr;
        }
    }
    CancelHook(const CancelHook&) = delete;
    CancelHook& operator=(const CancelHook&) = delete;
    ClientLink* link;
};

std::string request_head(const UpstreamSettings& s, const UpstreamRequest& req,
                         std::string_view request_id) {
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

/// A clean end of the upstream's byte stream. A TLS stream cut without close_notify
/// (`ssl::error::stream_truncated`) is not one: an EOF-delimited body ended that way may have
/// been truncated by anyone on the path, so it is a 502, never a complete answer.
bool is_eof(const error_code& ec) {
    return ec == net::error::eof;
}

/// Checks what sluice is about to write upstream: an origin-form target and header lines with
/// no CR, LF or NUL. The translators already encode every client value; this is the last line
/// of defence that makes request splitting impossible whatever a future translator forgets.
std::optional<GatewayError> check_upstream_request(const Provider& provider,
                                                   const UpstreamRequest& req,
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

/// Reads more bytes from the upstream into conn.inbuf.
net::awaitable<error_code> read_more(UpstreamConnection& conn) {
    char* buf = conn.read_buffer.get();
    auto [ec, n] = co_await conn.read_some(buf, UpstreamConnection::kReadBufferSize);
    if (n > 0) {
        conn.inbuf.append(buf, n);
    }
    if (!ec && n == 0) {
        ec = net::error::eof;
    }
    co_return n > 0 ? error_code{} : ec;
}

/// Reads more from the upstream into conn.inbuf (the read's result goes to `ec`). Returns the
/// error to stop with when the client left or the drain deadline passed meanwhile.
net::awaitable<std::optional<GatewayError>> read_more_unless_stopped(ClientLink* link,
                                                                    UpstreamConnection& conn,
                                                                    error_code& ec);

/// Decodes a response body as it arrives (Content-Length, chunked, or until EOF).
class BodyReader {
public:
    explicit BodyReader(const http1::MessageHead& head) {
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
    bool done() const { return mode_ == Mode::none || finished_; }
    bool until_eof() const { return mode_ == Mode::eof; }
    /// Moves payload from `in` to `out`; false on a framing error.
    bool consume(std::string& in, std::string& out) {
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
    /// The peer closed: for EOF-delimited bodies that is the end.
    void on_eof() {
        if (mode_ == Mode::eof) {
            finished_ = true;
        }
    }

private:
    enum class Mode { none, length, chunked, eof };
    Mode mode_ = Mode::eof;
    std::uint64_t remaining_ = 0;
    bool finished_ = false;
    http1::ChunkedDecoder chunked_;
};

GatewayError client_gone_error();

net::awaitable<std::optional<GatewayError>> read_more_unless_stopped(ClientLink* link,
                                                                    UpstreamConnection& conn,
                                                                    error_code& ec) {
    ec = co_await read_more(conn);
    if (link != nullptr && link->gone) {
        co_return client_gone_error();
    }
    if (link != nullptr && link->drain_abort) {
        co_return GatewayError::draining();
    }
    co_return std::nullopt;
}

GatewayError client_gone_error() {
    GatewayError e;
    e.status = 499;
    e.code = "client_closed_request";
    e.message = "The client closed the connection.";
    e.source = ErrorSource::downstream;
    return e;
}

Clock::time_point min_time(Clock::time_point a, Clock::time_point b) {
    return a < b ? a : b;
}

using proxy::AttemptFailure;
using proxy::FailKind;

/// The timeouts of one attempt: the target's, else the route's, else the provider's.
struct AttemptTimeouts {
    Clock::duration connect;
    Clock::duration first_byte;
    Clock::duration first_token;  ///< zero = off
    Clock::duration idle;
    Clock::duration request;
};

AttemptTimeouts provider_timeouts(const UpstreamSettings& s) {
    return AttemptTimeouts{s.connect_timeout, s.first_byte_timeout, s.first_token_timeout,
                           s.idle_timeout, s.request_timeout};
}

/// Opens or reuses a connection, sends the request and reads the response head (1xx skipped).
/// A reused connection that fails before any response byte is retried once on a fresh one.
/// On failure `kind` tells the retry policy what happened. `rt` is the snapshot the request
/// runs on (the one `provider` belongs to), never the worker's newest.
net::awaitable<std::optional<GatewayError>> start_exchange(Worker& worker, const Runtime& rt,
                                                           ClientLink* link,
                                                           const Provider& provider,
                                                           const UpstreamRequest& req,
                                                           std::string request_id,
                                                           Clock::time_point deadline,
                                                           AttemptTimeouts t,
                                                           Lease& lease,
                                                           http1::MessageHead& head,
                                                           FailKind& kind) {
    const UpstreamSettings& s = provider.settings();
    kind = FailKind::connect;
    PoolKey key;
    key.tls = s.tls;
    key.host = s.host;
    key.port = s.port;
    auto* tls = rt.tls_context(&provider);
    key.tls_context = tls;
    const std::string key_id = key.id();
    if (auto bad = check_upstream_request(provider, req, request_id)) {
        kind = FailKind::other;
        co_return bad;
    }
    const std::string out_head = request_head(s, req, request_id);
    lease.pool = &worker.pool();
    http1::HeadLimits limits;
    limits.max_head_bytes = 64 * 1024;
    limits.max_headers = 200;

    for (int attempt = 0; attempt < 2; ++attempt) {
        lease.drop();
        const auto connect_timeout = std::chrono::duration_cast<milliseconds>(t.connect);
        auto acquired = co_await worker.pool().acquire(key_id, s.max_connections,
                                                       s.pool_idle_timeout, connect_timeout);
        if (link != nullptr && link->gone) {
            if (acquired.idle) {
                worker.pool().put_idle(std::move(acquired.idle));
            } else if (acquired.ok) {
                worker.pool().release_slot(key_id);
            }
            co_return client_gone_error();
        }
        if (!acquired.ok) {
            co_return GatewayError::overloaded("All " + std::to_string(s.max_connections) +
                                               " connections to provider '" + provider.name() +
                                               "' are busy.");
        }
        const bool reused = acquired.idle != nullptr;
        if (reused) {
            lease.conn = std::move(acquired.idle);
        } else {
            lease.conn = std::make_unique<UpstreamConnection>(worker.io().get_executor(), key, tls);
        }
        UpstreamConnection& conn = *lease.conn;
        CancelHook hook(link, &conn);
        if (!reused) {
            worker.pool().note_opened();
            worker.opened_total.fetch_add(1, std::memory_order_relaxed);
            const auto [ec, stage] = co_await conn.connect(connect_timeout);
            if (ec) {
                if (link != nullptr && link->gone) {
                    co_return client_gone_error();
                }
                const std::string where = "provider '" + provider.name() + "' (" + s.host + ":" +
                                          std::to_string(s.port) + ")";
                if (ec == net::error::timed_out) {
                    kind = FailKind::timeout;
                    co_return GatewayError::upstream_timeout("Timed out connecting to " + where + ".");
                }
                if (std::string_view(stage) == "tls") {
                    co_return GatewayError::upstream_tls_error("TLS handshake with " + where +
                                                               " failed: " + ec.message());
                }
                co_return GatewayError::upstream_connect_failed(
                    "Could not connect to " + where + " (" + stage + "): " + ec.message());
            }
        }
        conn.mark_used();
        conn.deadline().expires_at(min_time(Clock::now() + t.first_byte, deadline));
        auto [wec, written] = co_await conn.write(out_head, req.body);
        if (wec) {
            if (link != nullptr && link->gone) {
                co_return client_gone_error();
            }
            if (reused && attempt == 0 && !conn.deadline().expired()) {
                continue;  // a stale keep-alive connection: once more on a fresh one
            }
            if (conn.deadline().expired()) {
                kind = FailKind::timeout;
                co_return GatewayError::upstream_timeout("Timed out sending the request to provider '" +
                                                         provider.name() + "'.");
            }
            co_return GatewayError::upstream_error("Sending the request to provider '" +
                                                   provider.name() + "' failed: " + wec.message());
        }
        // The first-byte timer starts once the request is out.
        const auto sent_at = Clock::now();
        conn.deadline().expires_at(min_time(sent_at + t.first_byte, deadline));
        kind = FailKind::other;
        bool any_byte = !conn.inbuf.empty();
        bool retry = false;
        http1::HeadScan scan;  // a head trickling in is scanned once, not per read
        while (true) {
            std::size_t consumed = 0;
            http1::ParseError perr;
            const auto st =
                http1::parse_response_head(conn.inbuf, limits, head, consumed, perr, &scan);
            if (st == http1::ParseStatus::done) {
                conn.inbuf.erase(0, consumed);
                scan = {};
                if (head.status >= 100 && head.status < 200) {
                    if (head.status == 101) {
                        co_return GatewayError::upstream_error("Provider '" + provider.name() +
                                                               "' tried to switch protocols.");
                    }
                    continue;  // 100 Continue, 103 Early Hints: wait for the real answer
                }
                break;
            }
            if (st == http1::ParseStatus::error) {
                co_return GatewayError::upstream_error("Provider '" + provider.name() +
                                                       "' sent an invalid response: " + perr.message);
            }
            error_code ec;
            if (auto stop = co_await read_more_unless_stopped(link, conn, ec)) {
                co_return stop;
            }
            if (ec) {
                if (conn.deadline().expired()) {
                    kind = FailKind::timeout;
                    co_return GatewayError::upstream_timeout(
                        "Provider '" + provider.name() + "' did not answer within " +
                        std::to_string(std::chrono::duration_cast<milliseconds>(
                                           min_time(sent_at + t.first_byte, deadline) - sent_at)
                                           .count()) +
                        " ms.");
                }
                if (!any_byte && reused && attempt == 0) {
                    retry = true;
                    break;
                }
                kind = any_byte ? FailKind::other : FailKind::reset;
                co_return GatewayError::upstream_error("Provider '" + provider.name() +
                                                       "' closed the connection before answering.");
            }
            any_byte = true;
        }
        if (retry) {
            continue;
        }
        co_return std::nullopt;
    }
    co_return GatewayError::upstream_error("Provider '" + provider.name() + "' is unreachable.");
}

/// Reads a whole (bounded) body. On error returns the error to answer with.
net::awaitable<std::optional<GatewayError>> read_body(ClientLink* link, const Provider& provider,
                                                      UpstreamConnection& conn,
                                                      const http1::MessageHead& head,
                                                      std::size_t max_bytes, std::string& body,
                                                      bool& reusable) {
    BodyReader reader(head);
    reusable = false;
    while (true) {
        if (!reader.consume(conn.inbuf, body)) {
            co_return GatewayError::upstream_error("Provider '" + provider.name() +
                                                   "' sent a malformed chunked body.");
        }
        if (body.size() > max_bytes) {
            co_return GatewayError::upstream_error("The answer of provider '" + provider.name() +
                                                   "' exceeds " + std::to_string(max_bytes) +
                                                   " bytes.", "upstream_response_too_large");
        }
        if (reader.done()) {
            break;
        }
        error_code ec;
        if (auto stop = co_await read_more_unless_stopped(link, conn, ec)) {
            co_return stop;
        }
        if (ec) {
            if (conn.deadline().expired()) {
                co_return GatewayError::upstream_timeout("Provider '" + provider.name() +
                                                         "' did not finish its answer in time.");
            }
            if (is_eof(ec) && reader.until_eof()) {
                reader.on_eof();
                break;
            }
            // Never a truncated 200.
            co_return GatewayError::upstream_error("Provider '" + provider.name() +
                                                   "' closed the connection mid-answer.",
                                                   "upstream_disconnect");
        }
    }
    reusable = head.keep_alive && !reader.until_eof() && conn.inbuf.empty();
    co_return std::nullopt;
}

/// The provider's error, translated, with the client's Retry-After header and the pause the
/// provider asked for (`retry-after-ms`, `x-ms-retry-after-ms`, else `Retry-After`).
GatewayError error_from_response(const Provider& provider, const http1::MessageHead& head,
                                 const std::string& body,
                                 std::optional<Clock::duration>& retry_after) {
    GatewayError err = provider.translate_error(head.status, body);
    const auto now_unix = std::chrono::duration_cast<std::chrono::seconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
    const auto ra_header = head.find("retry-after");
    const auto pause = routing::parse_retry_after(head.find("retry-after-ms"),
                                                  head.find("x-ms-retry-after-ms"), ra_header, now_unix);
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

std::string terminal_error_event(const GatewayError& e, Endpoint endpoint) {
    std::string out;
    if (anthropic_format(endpoint)) {
        out = "event: error\ndata: " + anthropic_error_json(e) + "\n\n";
    } else {
        sse::encode_data(e.to_json(), out);
    }
    return out;
}

/// One attempt's claim on its target: in-flight count, breaker verdict, latency sample. The
/// verdict is given once; an attempt that ends without one (the client left) releases a
/// half-open probe so the next request probes instead.
class AttemptGuard {
public:
    /// `measure`: keep latency samples (only least_latency routes read them).
    AttemptGuard(routing::TargetHealth& h, bool probe, bool measure)
        : h_(h), probe_(probe), measure_(measure) {
        h_.in_flight.fetch_add(1, std::memory_order_relaxed);
    }
    ~AttemptGuard() {
        h_.in_flight.fetch_sub(1, std::memory_order_relaxed);
        if (!decided_ && probe_) {
            h_.release_probe();
        }
    }
    AttemptGuard(const AttemptGuard&) = delete;
    AttemptGuard& operator=(const AttemptGuard&) = delete;

    /// The target answered usefully (2xx committed, or a client error it judged correctly).
    void success() {
        if (!decided_) {
            decided_ = true;
            h_.on_success(Clock::now(), probe_);
        }
    }
    void failure(Clock::duration retry_after) {
        if (!decided_) {
            decided_ = true;
            h_.on_failure(Clock::now(), probe_, retry_after);
        } else {
            h_.on_failure(Clock::now(), false, retry_after);  // e.g. cut mid-stream after commit
        }
    }
    /// The attempt failed for a reason that says nothing about the target (our own limits).
    void neutral() {
        if (!decided_) {
            decided_ = true;
            if (probe_) {
                h_.release_probe();
            }
        }
    }
    void observe(double ttft_ms, double tpot_ms) {
        if (measure_) {
            h_.observe(ttft_ms, tpot_ms);
        }
    }

private:
    routing::TargetHealth& h_;
    bool probe_;
    bool measure_;
    bool decided_ = false;
};

/// A 429 that says the account is out of money or quota: no wait makes it succeed.
bool out_of_quota(const GatewayError& e) {
    return e.code == "insufficient_quota" || e.type == "insufficient_quota";
}

/// Judges a failed attempt for the breaker and the provider's pauses. A 429 is rate limiting,
/// not ill health: it never counts toward opening the circuit (as Envoy's outlier detection
/// counts gateway errors, not 429s); its Retry-After pauses only the (provider, upstream model)
/// pair that answered it. 5xx, timeouts and connection errors still count.
void judge(const Target& target, std::string_view upstream_model, AttemptGuard& guard,
           AttemptFailure& f) {
    if (f.error.status == 429 || f.status == 429) {
        guard.neutral();
        if (out_of_quota(f.error)) {
            f.final = true;
        } else if (f.retry_after && *f.retry_after > Clock::duration::zero() && target.pauses) {
            target.pauses->pause(upstream_model, Clock::now() + *f.retry_after);
        }
        return;
    }
    guard.failure(Clock::duration::zero());
}

double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

/// Relays an SSE body event by event. The client's response head goes out with the first
/// relayed bytes: until then nothing is committed, and a failure (no first token in time, a
/// stream cut before its first event) is returned in `uncommitted` for the retry loop.
/// Returns whether the upstream connection may be reused.
net::awaitable<bool> relay_stream(ClientLink& link, RequestContext& ctx, const Provider& provider,
                                  UpstreamConnection* conn, const http1::MessageHead* head,
                                  const std::string& local_body, Clock::time_point deadline,
                                  const AttemptTimeouts& t, AttemptGuard* guard,
                                  Clock::time_point attempt_began,
                                  std::optional<AttemptFailure>& uncommitted, bool& close) {
    auto relay = provider.make_stream_relay(ctx.api);
    sse::Decoder decoder;
    std::string payload = local_body;
    std::string out;
    std::string frame;
    std::string response_prefix;
    bool committed = false;
    Clock::time_point committed_at{};
    const Clock::time_point first_token_deadline =
        t.first_token > Clock::duration::zero() ? attempt_began + t.first_token
                                                : Clock::time_point::max();
    std::optional<BodyReader> reader;
    if (head != nullptr) {
        reader.emplace(*head);
    }
    std::optional<GatewayError> failure;
    FailKind failure_kind = FailKind::other;
    bool clean_end = false;
    bool eof_ended = false;
    while (true) {
        if (reader && !reader->consume(conn->inbuf, payload)) {
            failure = GatewayError::upstream_error("The provider sent a malformed chunked body.",
                                                   "upstream_error");
        }
        out.clear();
        StreamRelay& r = *relay;
        bool relay_failed = false;
        if (!failure && r.wants_bytes()) {
            relay_failed = !payload.empty() && !r.on_bytes(payload, out);
        } else if (!failure) {
            const bool decoded =
                payload.empty() ||
                decoder.feed(payload, [&r, &out, &relay_failed](const sse::Event& ev) {
                    if (!relay_failed && !r.on_event(ev, out)) {
                        relay_failed = true;  // later events of this read are ignored
                    }
                });
            if (!decoded && !relay_failed) {
                failure = GatewayError::upstream_error(
                    std::string_view(decoder.failure()) == "line"
                        ? "The provider sent an SSE line over " +
                              std::to_string(sse::kMaxLineBytes) + " bytes."
                        : "The provider sent an SSE event over " +
                              std::to_string(sse::kMaxEventBytes) + " bytes.",
                    "upstream_response_too_large");
            }
        }
        payload.clear();
        if (!failure && !relay_failed && (!reader || reader->done())) {
            relay_failed = !relay->on_end(out);
        }
        if (relay_failed) {
            // The provider's error event or an answer sluice cannot read, scrubbed of secrets;
            // a rate limit or overload before commit goes to the retry loop as that status.
            failure = provider.scrubbed(r.error());
            const int st = failure->status;
            if (st == 429 || st >= 500) {
                if (failure->code != "upstream_invalid_response" &&
                    failure->code != "upstream_response_too_large") {
                    failure_kind = FailKind::status;
                }
            }
        }
        const bool end = failure || !reader || reader->done();
        if (end && !failure) {
            if (eof_ended && !relay->finished()) {
                // An unframed body ended by EOF without the provider's end marker: cut short.
                failure = GatewayError::upstream_error(
                    "The provider closed the stream before it finished.", "upstream_disconnect");
            } else {
                clean_end = true;
            }
        }
        if (!committed && (!out.empty() || clean_end)) {
            // The first bytes for the client: from here on nothing is retried.
            committed = true;
            committed_at = Clock::now();
            ctx.status = 200;
            if (guard != nullptr) {
                guard->success();
            }
            ExtraHeaders stream_headers{{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
            response_prefix =
                answer_head(ctx, 200, "text/event-stream", std::nullopt, close, std::move(stream_headers));
        }
        if (!committed && failure) {
            ctx.usage = relay->usage();
            AttemptFailure f;
            f.error = std::move(*failure);
            f.kind = failure_kind;
            f.status = failure_kind == FailKind::status ? f.error.status : 200;
            uncommitted = std::move(f);
            co_return false;
        }
        if (committed && (!out.empty() || end)) {
            if (end && !clean_end) {
                ctx.error_code = failure->code;
                out += terminal_error_event(*failure, ctx.endpoint);
                if (guard != nullptr && failure->source == ErrorSource::upstream) {
                    guard->failure(Clock::duration::zero());
                }
            }
            const bool ok = co_await write_chunk(link, ctx, response_prefix, out, end, frame);
            response_prefix.clear();
            if (!ok) {
                close = true;
                ctx.usage = relay->usage();
                co_return false;  // the client left: the upstream connection is not reused
            }
        }
        if (end) {
            break;
        }
        if (link.drain_abort) {
            failure = GatewayError::draining();
            failure->code = "draining";
            continue;  // the terminal event goes out at the top of the loop
        }
        auto read_deadline = min_time(Clock::now() + t.idle, deadline);
        if (!committed) {
            read_deadline = min_time(read_deadline, first_token_deadline);
        }
        conn->deadline().expires_at(read_deadline);
        const error_code ec = co_await read_more(*conn);
        if (link.gone) {
            ctx.usage = relay->usage();
            close = true;
            co_return false;
        }
        if (ec) {
            if (link.drain_abort) {
                failure = GatewayError::draining();
                failure->code = "draining";
            } else if (conn->deadline().expired()) {
                if (committed) {
                    failure = GatewayError::upstream_timeout(
                        "The provider sent nothing for too long in the middle of the stream.");
                } else {
                    failure = GatewayError::upstream_timeout(
                        "Provider '" + provider.name() + "' sent no token in time.");
                    failure_kind = FailKind::timeout;
                }
            } else if (is_eof(ec) && reader->until_eof()) {
                reader->on_eof();  // the end of an unframed body; judged at the top of the loop
                eof_ended = true;
            } else {
                failure = GatewayError::upstream_error(
                    "The provider closed the connection in the middle of the stream.",
                    "upstream_disconnect");
                failure_kind = FailKind::reset;
            }
        }
    }
    if (clean_end && decoder.has_partial() && !relay->finished()) {
        ctx.error_code = "upstream_disconnect";
    }
    ctx.usage = relay->usage();
    if (clean_end && guard != nullptr) {
        const auto now = Clock::now();
        const auto tokens = ctx.usage.completion_tokens;
        guard->observe(ms_between(attempt_began, committed_at),
                       tokens > 1 ? ms_between(committed_at, now) / static_cast<double>(tokens - 1)
                                  : -1.0);
    }
    co_return clean_end && reader && head->keep_alive && !reader->until_eof() && conn->inbuf.empty();
}

net::awaitable<std::optional<AttemptFailure>> answer_local(ClientLink& link, RequestContext& ctx,
                                                           const Provider& provider,
                                                           const UpstreamRequest& req,
                                                           AttemptGuard& guard, bool& close) {
    const auto began = Clock::now();
    LocalResponse resp = provider.respond_locally(req);
    ctx.upstream_time += Clock::now() - began;
    ctx.runtime.filters().on_upstream_response(ctx, UpstreamResponseHead(provider, resp.status, nullptr));
    if (resp.status >= 400) {
        AttemptFailure f;
        f.error = provider.translate_error(resp.status, resp.body);
        f.kind = FailKind::status;
        f.status = resp.status;
        if (resp.status == 429) {
            guard.neutral();  // rate limiting is not ill health
        } else if (resp.status >= 500) {
            guard.failure(Clock::duration::zero());
        } else {
            guard.success();
        }
        co_return f;
    }
    if (ctx.api.stream) {
        const auto deadline = Clock::now() + std::chrono::hours(1);
        const AttemptTimeouts t = provider_timeouts(provider.settings());
        std::optional<AttemptFailure> uncommitted;
        co_await relay_stream(link, ctx, provider, nullptr, nullptr, resp.body, deadline, t, &guard,
                              began, uncommitted, close);
        co_return uncommitted;
    }
    if (auto err = provider.translate_response(ctx.api, resp.body, ctx.usage)) {
        AttemptFailure f;
        f.error = std::move(*err);
        guard.failure(Clock::duration::zero());
        co_return f;
    }
    guard.success();
    if (!co_await send_body(link, ctx, 200, resp.content_type, resp.body, close)) {
        close = true;
    }
    co_return std::nullopt;
}

struct ModelsCache {
    std::mutex mutex;
    /// (runtime generation, provider) -> (expiry, ids)
    std::map<std::pair<std::uint64_t, const Provider*>, std::pair<Clock::time_point, std::vector<std::string>>> entries;
};
ModelsCache& models_cache() {
    static ModelsCache cache;
    return cache;
}

}  // namespace

namespace {

/// A GET of a provider's model list: its status and body, or the error that stopped it.
struct ModelList {
    int status = 0;
    std::string body;
    std::optional<GatewayError> error;
};

net::awaitable<ModelList> fetch_model_list(Worker& worker, const Runtime& rt,
                                           const Provider& provider,
                                           const UpstreamRequest& req, std::string request_id,
                                           Clock::duration timeout) {
    ModelList out;
    Lease lease;
    http1::MessageHead head;
    FailKind kind = FailKind::other;
    AttemptTimeouts t = provider_timeouts(provider.settings());
    t.connect = std::min(t.connect, timeout);
    t.first_byte = timeout;
    const auto deadline = Clock::now() + timeout;
    out.error = co_await start_exchange(worker, rt, nullptr, provider, req, request_id, deadline,
                                        t, lease, head, kind);
    if (out.error) {
        co_return out;
    }
    bool reusable = false;
    lease.conn->deadline().expires_at(deadline);
    out.error = co_await read_body(nullptr, provider, *lease.conn, head, 8 * 1024 * 1024, out.body,
                                   reusable);
    if (!out.error) {
        out.status = head.status;
        if (reusable) {
            lease.keep();
        }
    }
    co_return out;
}

}  // namespace

net::awaitable<bool> check_provider(Worker& worker, const Runtime& rt, const Provider& provider,
                                    std::chrono::milliseconds timeout) {
    const auto req = provider.models_request();
    if (provider.local() || !req) {
        co_return true;
    }
    const std::string request_id = "health-check";
    const ModelList got =
        co_await fetch_model_list(worker, rt, provider, *req, request_id, timeout);
    const bool ok = !got.error && got.status >= 200 && got.status < 300;
    if (got.error) {
        log::debug("health check of provider '{}': {}", provider.name(), got.error->message);
    } else if (!ok) {
        log::debug("health check of provider '{}': HTTP {}", provider.name(), got.status);
    }
    co_return ok;
}

net::awaitable<std::vector<std::string>> provider_models(Worker& worker, const Runtime& rt,
                                                         const Provider& provider,
                                                         std::string request_id) {
    const auto cache_key = std::make_pair(rt.generation(), &provider);
    {
        std::lock_guard lock(models_cache().mutex);
        auto& entries = models_cache().entries;
        // Entries of replaced runtimes are dropped (their pointers may be reused).
        for (auto it = entries.begin(); it != entries.end();) {
            it = it->first.first != rt.generation() ? entries.erase(it) : std::next(it);
        }
        const auto it = entries.find(cache_key);
        if (it != entries.end() && Clock::now() < it->second.first) {
            co_return it->second.second;
        }
    }
    const auto req = provider.models_request();
    std::vector<std::string> ids;
    if (!req) {
        co_return ids;
    }
    if (provider.local()) {
        ids = provider.parse_models(provider.respond_locally(*req).body);
    } else {
        const Clock::duration timeout = provider.settings().first_byte_timeout;
        const ModelList got =
            co_await fetch_model_list(worker, rt, provider, *req, request_id, timeout);
        if (got.error) {
            log::warn("listing the models of provider '{}' failed: {}", provider.name(),
                      got.error->message);
            co_return ids;  // not cached: the next request tries again
        }
        if (got.status == 200) {
            ids = provider.parse_models(got.body);
        } else {
            log::warn("listing the models of provider '{}' failed: HTTP {}", provider.name(),
                      got.status);
        }
    }
    std::lock_guard lock(models_cache().mutex);
    models_cache().entries[cache_key] = {Clock::now() + std::chrono::minutes(1), ids};
    co_return ids;
}

namespace {

Clock::duration choose_timeout(const std::optional<Duration>& target,
                               const std::optional<Duration>& route, Clock::duration provider) {
    if (target) {
        return *target;
    }
    if (route) {
        return *route;
    }
    return provider;
}

AttemptTimeouts effective_timeouts(const Route& route, const Target& target) {
    AttemptTimeouts t = provider_timeouts(target.provider->settings());
    const TimeoutOverrides& r = route.config->timeouts;
    const TimeoutOverrides& o = target.timeouts;
    t.connect = choose_timeout(o.connect, r.connect, t.connect);
    t.first_byte = choose_timeout(o.first_byte, r.first_byte, t.first_byte);
    t.first_token = choose_timeout(o.first_token, r.first_token, t.first_token);
    t.idle = choose_timeout(o.idle, r.idle, t.idle);
    return t;
}

/// A non-stream answer the model refused (finish_reason content_filter, Anthropic's refusal).
bool is_refusal(std::string_view body) {
    json::Json doc;
    if (!json::parse_untrusted(body, doc) || !doc.is_object()) {
        return false;
    }
    if (json::string_or(doc, "stop_reason") == "refusal") {
        return true;
    }
    if (const json::Json* choices = json::find(doc, "choices"); choices && choices->is_array()) {
        for (const auto& c : *choices) {
            if (c.is_object() && json::string_or(c, "finish_reason") == "content_filter") {
                return true;
            }
        }
    }
    return false;
}

/// One try at one target. Returns nullopt when the client was answered (or left); otherwise
/// the failure, with nothing sent to the client yet.
net::awaitable<std::optional<AttemptFailure>> run_attempt(ClientLink& link,
                                                          RequestContext& ctx, const Route& route,
                                                          const Target& target,
                                                          Clock::time_point total_deadline,
                                                          AttemptGuard& guard, bool& close) {
    const Provider& provider = *target.provider;
    const std::string_view upstream_model = target.upstream_model(ctx.api.model);
    const std::size_t attempt_index = ctx.attempts.size();
    ctx.attempts.push_back(Attempt{&provider, &route, std::string(upstream_model), 0, {}, {}, {}});
    const auto began = Clock::now();

    UpstreamRequest req;
    if (auto err = provider.build_request(ctx.api, upstream_model, req)) {
        // The request cannot be expressed for this provider: the client's to fix.
        guard.neutral();
        AttemptFailure f;
        f.error = std::move(*err);
        co_return f;
    }
    if (auto refused = ctx.runtime.filters().on_upstream_request(ctx, target, req)) {
        guard.neutral();
        AttemptFailure f;
        f.error = std::move(*refused);
        co_return f;
    }
    if (provider.local()) {
        auto local = co_await answer_local(link, ctx, provider, req, guard, close);
        ctx.attempts[attempt_index].status = local ? local->status : ctx.status;
        co_return local;
    }

    const AttemptTimeouts t = effective_timeouts(route, target);
    const auto deadline = min_time(total_deadline, began + t.request);
    Lease lease;
    http1::MessageHead head;
    FailKind kind = FailKind::other;
    auto err = co_await start_exchange(link.worker, ctx.runtime, &link, provider, req,
                                       ctx.request_id, deadline, t, lease, head, kind);
    ctx.upstream_time += Clock::now() - began;
    if (err) {
        if (err->status == 499) {
            co_return std::nullopt;
        }
        log::warn("request {}: {}", ctx.request_id, err->message);
        if (err->code == "overloaded" || err->code == "draining" || err->status < 500) {
            guard.neutral();  // our own limit or a refused request, not the target's health
        } else {
            guard.failure(Clock::duration::zero());
        }
        AttemptFailure f;
        f.error = std::move(*err);
        f.kind = kind;
        co_return f;
    }
    ctx.attempts[attempt_index].status = head.status;
    ctx.runtime.filters().on_upstream_response(ctx, UpstreamResponseHead(provider, head.status, &head));
    CancelHook hook(&link, lease.conn.get());
    UpstreamConnection& conn = *lease.conn;

    if (head.status >= 300 && head.status < 400) {
        // Redirects are never followed (credentials must not go to another host) nor passed on.
        log::warn("request {}: provider '{}' answered HTTP {} (redirect): check its base_url",
                  ctx.request_id, provider.name(), head.status);
        guard.failure(Clock::duration::zero());
        AttemptFailure f;
        f.error = GatewayError::upstream_error(
            "Provider '" + provider.name() + "' answered with a redirect (HTTP " +
            std::to_string(head.status) + "); sluice does not follow redirects.");
        f.status = head.status;
        co_return f;
    }
    if (head.status < 200 || head.status >= 300) {
        std::string body;
        bool reusable = false;
        conn.deadline().expires_at(min_time(Clock::now() + t.idle, deadline));
        const auto body_began = Clock::now();
        auto body_err = co_await read_body(&link, provider, conn, head, kMaxErrorBody, body,
                                           reusable);
        ctx.upstream_time += Clock::now() - body_began;
        if (body_err && body_err->status == 499) {
            co_return std::nullopt;
        }
        AttemptFailure f;
        f.error = error_from_response(provider, head, body, f.retry_after);
        f.kind = FailKind::status;
        f.status = head.status;
        if (head.status >= 500 || head.status == 429 || f.error.code == "upstream_auth_error") {
            log::warn("request {}: provider '{}' answered HTTP {}: {}", ctx.request_id,
                      provider.name(), head.status, f.error.message);
            judge(target, upstream_model, guard, f);
        } else {
            guard.success();  // a client error, judged correctly: the target is healthy
        }
        if (!body_err && reusable) {
            lease.keep();
        }
        co_return f;
    }

    if (ctx.api.stream) {
        if (!content_type_is(head.find("content-type"), provider.stream_content_type())) {
            // F4: a stream was asked for, a non-SSE body came back; nothing was sent yet.
            guard.failure(Clock::duration::zero());
            AttemptFailure f;
            f.error = GatewayError::upstream_error(
                "Provider '" + provider.name() + "' answered a streaming request without an event stream.");
            f.status = head.status;
            co_return f;
        }
        const std::string no_local_body;
        std::optional<AttemptFailure> uncommitted;
        const bool reusable = co_await relay_stream(link, ctx, provider, &conn, &head, no_local_body,
                                                    deadline, t, &guard, began, uncommitted, close);
        if (uncommitted) {
            if (uncommitted->error.code == "draining") {
                guard.neutral();
            } else {
                judge(target, upstream_model, guard, *uncommitted);
            }
            co_return uncommitted;
        }
        if (reusable) {
            lease.keep();
        }
        co_return std::nullopt;
    }

    std::string body;
    bool reusable = false;
    conn.deadline().expires_at(deadline);
    const auto body_began = Clock::now();
    auto body_err = co_await read_body(&link, provider, conn, head,
                                       provider.settings().max_response_bytes, body, reusable);
    ctx.upstream_time += Clock::now() - body_began;
    if (body_err) {
        if (body_err->status == 499) {
            co_return std::nullopt;
        }
        guard.failure(Clock::duration::zero());
        AttemptFailure f;
        f.error = std::move(*body_err);
        f.status = head.status;
        co_return f;  // the provider may have billed: FailKind::other, never retried
    }
    if (reusable) {
        lease.keep();
    }
    if (auto translate_err = provider.translate_response(ctx.api, body, ctx.usage)) {
        guard.failure(Clock::duration::zero());
        AttemptFailure f;
        f.error = std::move(*translate_err);
        f.status = head.status;
        co_return f;
    }
    guard.success();
    guard.observe(ms_between(began, Clock::now()), -1.0);
    if (!route.on_content_policy.empty() && is_refusal(body)) {
        AttemptFailure f;
        f.error = GatewayError::bad_request("Provider '" + provider.name() +
                                                "' refused the request under its content policy.",
                                            "content_policy_violation");
        f.status = head.status;
        co_return f;
    }
    // The body is JSON in OpenAI's shape (translated when the provider speaks another dialect):
    // keep the provider's JSON content type (with its charset), else say application/json.
    auto content_type = head.find("content-type");
    if (content_type.size() < 16 || !iequals(content_type.substr(0, 16), "application/json")) {
        content_type = "application/json";
    }
    if (!co_await send_body(link, ctx, 200, content_type, body, close)) {
        close = true;
    }
    co_return std::nullopt;
}

/// Sleeps between attempts. false when the client left or the server is draining meanwhile.
net::awaitable<bool> pause(ClientLink& link, RequestContext& ctx, Clock::duration d) {
    if (d > Clock::duration::zero()) {
        const auto began = Clock::now();
        net::steady_timer timer(link.worker.io(), d);
        link.retry_timer = &timer;  // the client leaving (or the drain deadline) ends the wait
        co_await timer.async_wait(use_nothrow);
        link.retry_timer = nullptr;
        ctx.retry_wait += Clock::now() - began;
    }
    co_return !link.gone && !link.drain_abort;
}

routing::Rng& worker_rng() {
    thread_local routing::Rng rng{std::random_device{}()};
    return rng;
}

}  // namespace

net::awaitable<void> forward(std::shared_ptr<ClientLink> link, RequestContext& ctx, bool& close) {
    const Route& primary = *ctx.route;
    proxy::AttemptPlan plan(primary, ctx.api.model, ctx.started + primary.config->total_timeout,
                            worker_rng());
    for (proxy::Step step = plan.next(Clock::now()); step.kind != proxy::Step::exhausted;
         step = plan.next(Clock::now())) {
        if (step.kind == proxy::Step::wait) {
            if (!co_await pause(*link, ctx, step.until - Clock::now())) {
                // The client left or the drain deadline passed during the wait.
                if (!link->gone) {
                    const auto e = GatewayError::draining();
                    co_await send_error(*link, ctx, e, true);
                    close = true;
                }
                co_return;
            }
            continue;
        }
        const Target& target = *step.target;
        ctx.error_code.clear();
        ctx.usage = Usage{};
        std::optional<AttemptFailure> failed;
        {
            AttemptGuard guard(*target.health, step.probe,
                               static_cast<routing::Strategy>(step.route->strategy) ==
                                   routing::Strategy::least_latency);
            const auto attempt_began = Clock::now();
            failed = co_await run_attempt(*link, ctx, *step.route, target, plan.deadline(), guard,
                                          close);
            ctx.attempts.back().duration = Clock::now() - attempt_began;
            ctx.attempts.back().usage = ctx.usage;
        }
        if (!failed) {
            co_return;  // answered, or the client left
        }
        AttemptFailure& failure = *failed;
        ctx.attempts.back().error =
            failure.error.code.empty() ? std::to_string(failure.status) : failure.error.code;
        if (link->gone) {
            co_return;
        }
        plan.failed(std::move(failure), Clock::now());
    }
    const GatewayError e = plan.final_error(Clock::now());
    co_await send_error(*link, ctx, e, close);
}

}  // namespace sluice
