// The upstream half of a request: connection from the worker's pool, request out, response in,
// relayed to the client as JSON or as SSE event by event.
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>

#include <boost/asio/ssl/error.hpp>

#include "log/log.hpp"
#include "providers/messages_translate.hpp"
#include "server/session.hpp"
#include "sse/sse.hpp"
#include "util/strings.hpp"

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

bool is_eof(const error_code& ec) {
    return ec == net::error::eof || ec == net::ssl::error::stream_truncated;
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

/// Opens or reuses a connection, sends the request and reads the response head (1xx skipped).
/// A reused connection that fails before any response byte is retried once on a fresh one.
net::awaitable<std::optional<GatewayError>> start_exchange(Worker& worker, ClientLink* link,
                                                           const Provider& provider,
                                                           const UpstreamRequest& req,
                                                           std::string request_id,
                                                           Clock::time_point deadline,
                                                           Lease& lease,
                                                           http1::MessageHead& head) {
    const UpstreamSettings& s = provider.settings();
    const std::shared_ptr<const Runtime> rt = worker.runtime();
    PoolKey key;
    key.tls = s.tls;
    key.host = s.host;
    key.port = s.port;
    auto* tls = rt->tls_context(&provider);
    key.tls_context = tls;
    const std::string key_id = key.id();
    const std::string out_head = request_head(s, req, request_id);
    lease.pool = &worker.pool();
    http1::HeadLimits limits;
    limits.max_head_bytes = 64 * 1024;
    limits.max_headers = 200;

    for (int attempt = 0; attempt < 2; ++attempt) {
        lease.drop();
        auto acquired = co_await worker.pool().acquire(key_id, s.max_connections,
                                                       s.pool_idle_timeout, s.connect_timeout);
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
            const auto [ec, stage] = co_await conn.connect(s.connect_timeout);
            if (ec) {
                if (link != nullptr && link->gone) {
                    co_return client_gone_error();
                }
                const std::string where = "provider '" + provider.name() + "' (" + s.host + ":" +
                                          std::to_string(s.port) + ")";
                if (ec == net::error::timed_out) {
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
        conn.deadline().expires_at(min_time(Clock::now() + s.first_byte_timeout, deadline));
        auto [wec, written] = co_await conn.write(out_head, req.body);
        if (wec) {
            if (link != nullptr && link->gone) {
                co_return client_gone_error();
            }
            if (reused && attempt == 0 && !conn.deadline().expired()) {
                continue;  // a stale keep-alive connection: once more on a fresh one
            }
            if (conn.deadline().expired()) {
                co_return GatewayError::upstream_timeout("Timed out sending the request to provider '" +
                                                         provider.name() + "'.");
            }
            co_return GatewayError::upstream_error("Sending the request to provider '" +
                                                   provider.name() + "' failed: " + wec.message());
        }
        // The first-byte timer starts once the request is out.
        conn.deadline().expires_at(min_time(Clock::now() + s.first_byte_timeout, deadline));
        bool any_byte = !conn.inbuf.empty();
        bool retry = false;
        while (true) {
            std::size_t consumed = 0;
            http1::ParseError perr;
            const auto st = http1::parse_response_head(conn.inbuf, limits, head, consumed, perr);
            if (st == http1::ParseStatus::done) {
                conn.inbuf.erase(0, consumed);
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
                    co_return GatewayError::upstream_timeout(
                        "Provider '" + provider.name() + "' did not answer within " +
                        std::to_string(std::chrono::duration_cast<milliseconds>(s.first_byte_timeout).count()) +
                        " ms.");
                }
                if (!any_byte && reused && attempt == 0) {
                    retry = true;
                    break;
                }
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

GatewayError error_from_response(const Provider& provider, const http1::MessageHead& head,
                                 const std::string& body) {
    GatewayError err = provider.translate_error(head.status, body);
    if (const auto ra = head.find("retry-after"); !ra.empty() && ra.size() < 64) {
        err.retry_after = std::string(ra);
    } else {
        for (const char* name : {"retry-after-ms", "x-ms-retry-after-ms"}) {
            const auto ms = head.find(name);
            if (!ms.empty() && ms.size() < 16 && ms.find_first_not_of("0123456789.") == std::string_view::npos) {
                const double v = std::strtod(std::string(ms).c_str(), nullptr);
                err.retry_after = std::to_string(static_cast<long long>((v + 999.0) / 1000.0));
                break;
            }
        }
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

/// Writes `events` as one HTTP chunk (after `prefix`, the response head on the first write; and,
/// when `last`, followed by the terminating chunk) in one contiguous buffer.
net::awaitable<bool> write_chunk(ClientLink& link, RequestContext& ctx, const std::string& prefix,
                                 const std::string& events, bool last, std::string& frame) {
    frame.clear();
    frame += prefix;
    if (!events.empty()) {
        char size_line[24];
        const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", events.size());
        frame.append(size_line, static_cast<std::size_t>(n));
        frame += events;
        frame += "\r\n";
    }
    if (last) {
        frame += "0\r\n\r\n";
    }
    const std::array<net::const_buffer, 1> bufs{net::buffer(frame)};
    co_return co_await write_client(link, ctx, bufs);
}

/// Relays an SSE body event by event. Returns whether the upstream connection may be reused.
net::awaitable<bool> relay_stream(ClientLink& link, RequestContext& ctx, const Provider& provider,
                                  UpstreamConnection* conn, const http1::MessageHead* head,
                                  const std::string& local_body, Clock::time_point deadline,
                                  bool& close) {
    const UpstreamSettings& s = provider.settings();
    auto relay = provider.make_stream_relay(ctx.api);
    sse::Decoder decoder;
    std::string payload = local_body;
    std::string out;
    std::string frame;
    ctx.status = 200;
    ExtraHeaders stream_headers{{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
    add_transparency_headers(ctx, stream_headers);
    std::string response_prefix =
        response_head(200, "text/event-stream", std::nullopt, ctx.request_id, close, stream_headers);
    std::optional<BodyReader> reader;
    if (head != nullptr) {
        reader.emplace(*head);
    }
    std::optional<GatewayError> failure;
    bool clean_end = false;
    bool eof_ended = false;
    while (true) {
        if (reader && !reader->consume(conn->inbuf, payload)) {
            failure = GatewayError::upstream_error("The provider sent a malformed chunked body.",
                                                   "upstream_error");
        }
        out.clear();
        StreamRelay& r = *relay;
        if (r.wants_bytes()) {
            if (!payload.empty() && !r.on_bytes(payload, out)) {
                failure = GatewayError::upstream_error("The provider's stream failed (corrupt frame or an error event).",
                                                       "upstream_error");
            }
        } else {
            const bool decoded =
                payload.empty() ||
                decoder.feed(payload, [&r, &out](const sse::Event& ev) { r.on_event(ev, out); });
            if (!decoded) {
                failure = GatewayError::upstream_error("The provider sent an SSE line over 1 MiB.",
                                                       "upstream_error");
            }
        }
        payload.clear();
        const bool end = failure || !reader || reader->done();
        if (end && !failure) {
            relay->on_end(out);
            if (eof_ended && !relay->finished()) {
                // An unframed body ended by EOF without the provider's end marker: cut short.
                failure = GatewayError::upstream_error(
                    "The provider closed the stream before it finished.", "upstream_disconnect");
                ctx.error_code = failure->code;
            } else {
                clean_end = true;
            }
        }
        if (!out.empty() || !response_prefix.empty() || end) {
            std::string tail;
            if (end && !clean_end) {
                tail = terminal_error_event(*failure, ctx.endpoint);
            }
            if (!tail.empty()) {
                out += tail;
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
        conn->deadline().expires_at(min_time(Clock::now() + s.idle_timeout, deadline));
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
                failure = GatewayError::upstream_timeout(
                    "The provider sent nothing for too long in the middle of the stream.");
            } else if (is_eof(ec) && reader->until_eof()) {
                reader->on_eof();  // the end of an unframed body; judged at the top of the loop
                eof_ended = true;
            } else {
                failure = GatewayError::upstream_error(
                    "The provider closed the connection in the middle of the stream.",
                    "upstream_disconnect");
            }
            if (failure) {
                ctx.error_code = failure->code;
            }
        }
    }
    if (clean_end && decoder.has_partial() && !relay->finished()) {
        ctx.error_code = "upstream_disconnect";
    }
    ctx.usage = relay->usage();
    co_return clean_end && reader && head->keep_alive && !reader->until_eof() && conn->inbuf.empty();
}

net::awaitable<void> answer_local(ClientLink& link, RequestContext& ctx, const Provider& provider,
                                  const UpstreamRequest& req, bool& close) {
    const auto began = Clock::now();
    LocalResponse resp = provider.respond_locally(req);
    ctx.upstream_time += Clock::now() - began;
    if (resp.status >= 400) {
        const GatewayError err = provider.translate_error(resp.status, resp.body);
        co_await send_error(link, ctx, err, close);
        co_return;
    }
    if (ctx.api.stream) {
        const auto deadline = Clock::now() + std::chrono::hours(1);
        co_await relay_stream(link, ctx, provider, nullptr, nullptr, resp.body, deadline, close);
        co_return;
    }
    if (auto err = provider.translate_response(ctx.api, resp.body, ctx.usage)) {
        co_await send_error(link, ctx, *err, close);
        co_return;
    }
    if (!co_await send_body(link, ctx, 200, resp.content_type, resp.body, close)) {
        close = true;
    }
}

struct ModelsCache {
    std::mutex mutex;
    std::map<std::pair<const Runtime*, const Provider*>, std::pair<Clock::time_point, std::vector<std::string>>> entries;
};
ModelsCache& models_cache() {
    static ModelsCache cache;
    return cache;
}

}  // namespace

net::awaitable<std::vector<std::string>> provider_models(Worker& worker, const Provider& provider,
                                                         std::string request_id) {
    const std::shared_ptr<const Runtime> rt = worker.runtime();
    const auto cache_key = std::make_pair(rt.get(), &provider);
    {
        std::lock_guard lock(models_cache().mutex);
        auto& entries = models_cache().entries;
        // Entries of replaced runtimes are dropped (their pointers may be reused).
        for (auto it = entries.begin(); it != entries.end();) {
            it = it->first.first != rt.get() ? entries.erase(it) : std::next(it);
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
        Lease lease;
        http1::MessageHead head;
        const auto deadline = Clock::now() + provider.settings().first_byte_timeout;
        auto err = co_await start_exchange(worker, nullptr, provider, *req, request_id, deadline,
                                           lease, head);
        if (!err) {
            std::string body;
            bool reusable = false;
            err = co_await read_body(nullptr, provider, *lease.conn, head, 8 * 1024 * 1024, body,
                                     reusable);
            if (!err && head.status == 200) {
                ids = provider.parse_models(body);
            } else if (!err) {
                log::warn("listing the models of provider '{}' failed: HTTP {}", provider.name(),
                          head.status);
            }
            if (!err && reusable) {
                lease.keep();
            }
        }
        if (err) {
            log::warn("listing the models of provider '{}' failed: {}", provider.name(), err->message);
            co_return ids;  // not cached: the next request tries again
        }
    }
    std::lock_guard lock(models_cache().mutex);
    models_cache().entries[cache_key] = {Clock::now() + std::chrono::minutes(1), ids};
    co_return ids;
}

net::awaitable<void> forward(std::shared_ptr<ClientLink> link, RequestContext& ctx, bool& close) {
    const Target& target = *ctx.target;
    const Provider& provider = *target.provider;
    const std::string& upstream_model = target.model.empty() ? ctx.api.model : target.model;
    ctx.attempts.push_back(Attempt{&provider, upstream_model, 0, {}});

    UpstreamRequest req;
    if (auto err = provider.build_request(ctx.api, upstream_model, req)) {
        co_await send_error(*link, ctx, *err, close);
        co_return;
    }
    if (provider.local()) {
        co_await answer_local(*link, ctx, provider, req, close);
        ctx.attempts.back().status = ctx.status;
        co_return;
    }

    const UpstreamSettings& s = provider.settings();
    const auto deadline = ctx.started + s.request_timeout;
    Lease lease;
    http1::MessageHead head;
    const auto exchange_began = Clock::now();
    auto err = co_await start_exchange(link->worker, link.get(), provider, req, ctx.request_id,
                                       deadline, lease, head);
    ctx.upstream_time += Clock::now() - exchange_began;
    if (err) {
        ctx.attempts.back().error = err->code;
        if (err->status != 499) {
            log::warn("request {}: {}", ctx.request_id, err->message);
            co_await send_error(*link, ctx, *err, close);
        }
        co_return;
    }
    ctx.attempts.back().status = head.status;
    CancelHook hook(link.get(), lease.conn.get());
    UpstreamConnection& conn = *lease.conn;

    if (head.status >= 300 && head.status < 400) {
        // Redirects are never followed (credentials must not go to another host) nor passed on.
        ctx.attempts.back().error = "upstream_redirect";
        const auto e = GatewayError::upstream_error(
            "Provider '" + provider.name() + "' answered with a redirect (HTTP " +
            std::to_string(head.status) + "); sluice does not follow redirects.");
        log::warn("request {}: provider '{}' answered HTTP {} (redirect): check its base_url",
                  ctx.request_id, provider.name(), head.status);
        co_await send_error(*link, ctx, e, close);
        co_return;
    }
    if (head.status < 200 || head.status >= 300) {
        std::string body;
        bool reusable = false;
        conn.deadline().expires_at(min_time(Clock::now() + s.idle_timeout, deadline));
        const auto body_began = Clock::now();
        auto body_err = co_await read_body(link.get(), provider, conn, head, kMaxErrorBody, body,
                                           reusable);
        ctx.upstream_time += Clock::now() - body_began;
        if (body_err && body_err->status == 499) {
            co_return;
        }
        GatewayError e = error_from_response(provider, head, body);
        ctx.attempts.back().error = e.code.empty() ? std::to_string(head.status) : e.code;
        if (head.status >= 500 || e.code == "upstream_auth_error") {
            log::warn("request {}: provider '{}' answered HTTP {}: {}", ctx.request_id,
                      provider.name(), head.status, e.message);
        }
        if (!body_err && reusable) {
            lease.keep();
        }
        co_await send_error(*link, ctx, e, close);
        co_return;
    }

    if (ctx.api.stream) {
        if (!content_type_is(head.find("content-type"), provider.stream_content_type())) {
            // F4: a stream was asked for, a non-SSE body came back; nothing was sent yet.
            const auto e = GatewayError::upstream_error(
                "Provider '" + provider.name() + "' answered a streaming request without an event stream.");
            co_await send_error(*link, ctx, e, close);
            co_return;
        }
        const std::string no_local_body;
        const bool reusable =
            co_await relay_stream(*link, ctx, provider, &conn, &head, no_local_body, deadline, close);
        if (reusable) {
            lease.keep();
        }
        co_return;
    }

    std::string body;
    bool reusable = false;
    conn.deadline().expires_at(deadline);
    const auto body_began = Clock::now();
    auto body_err = co_await read_body(link.get(), provider, conn, head, s.max_response_bytes, body,
                                       reusable);
    ctx.upstream_time += Clock::now() - body_began;
    if (body_err) {
        ctx.attempts.back().error = body_err->code;
        if (body_err->status != 499) {
            co_await send_error(*link, ctx, *body_err, close);
        }
        co_return;
    }
    if (reusable) {
        lease.keep();
    }
    if (auto translate_err = provider.translate_response(ctx.api, body, ctx.usage)) {
        co_await send_error(*link, ctx, *translate_err, close);
        co_return;
    }
    // The body is JSON in OpenAI's shape (translated when the provider speaks another dialect):
    // keep the provider's JSON content type (with its charset), else say application/json.
    auto content_type = head.find("content-type");
    if (content_type.size() < 16 || !iequals(content_type.substr(0, 16), "application/json")) {
        content_type = "application/json";
    }
    if (!co_await send_body(*link, ctx, 200, content_type, body, close)) {
        close = true;
    }
}

}  // namespace sluice
