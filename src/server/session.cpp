// The downstream session: reads requests from one client connection (keep-alive, pipelining),
// enforces the limits and timeouts of RELIABILITY.md §1.1, and dispatches them.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <set>

#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>

#include "log/log.hpp"
#include "providers/messages_translate.hpp"
#include "server/session.hpp"
#include "util/scrub.hpp"
#include "util/strings.hpp"

#include <sluice/version.hpp>

namespace sluice {

namespace {

std::string_view http_date() {
    thread_local std::time_t cached_second = 0;
    thread_local char buf[64] = {};
    const std::time_t now = std::time(nullptr);
    if (now != cached_second) {
        std::tm tm{};
        gmtime_r(&now, &tm);
        std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        cached_second = now;
    }
    return buf;
}

struct ActiveRequest {
    explicit ActiveRequest(Server& s) : server(s) { server.active_requests.fetch_add(1); }
    ~ActiveRequest() { server.active_requests.fetch_sub(1); }
    ActiveRequest(const ActiveRequest&) = delete;
    ActiveRequest& operator=(const ActiveRequest&) = delete;
    Server& server;
};

struct LinkRegistration {
    LinkRegistration(Worker& w, ClientLink* link) : worker(w), self(link) {
        worker.links.push_front(link);
        link->registry_pos = worker.links.begin();
        worker.server().connections.fetch_add(1);
    }
    ~LinkRegistration() {
        // Closing aborts the background read, whose handler holds the last reference.
        error_code ignored;
        self->socket.close(ignored);
        worker.links.erase(self->registry_pos);
        worker.server().connections.fetch_sub(1);
    }
    LinkRegistration(const LinkRegistration&) = delete;
    LinkRegistration& operator=(const LinkRegistration&) = delete;
    Worker& worker;
    ClientLink* self;
};

/// Routes are served with or without the /v1 prefix (SDKs configured with a bare base URL).
std::string_view api_path(std::string_view path) {
    if (path.rfind("/v1/", 0) == 0) {
        return path.substr(3);
    }
    return path;
}

}  // namespace

std::string response_head(int status, std::string_view content_type,
                          std::optional<std::size_t> content_length, std::string_view request_id,
                          bool close, const ExtraHeaders& extra, const ResponseHeaders* added) {
    std::string h;
    h.reserve(256);
    h += "HTTP/1.1 ";
    h += std::to_string(status);
    h += ' ';
    h += boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
    h += "\r\nDate: ";
    h += http_date();
    h += "\r\nServer: sluice\r\n";
    if (!content_type.empty()) {
        h += "Content-Type: ";
        h += content_type;
        h += "\r\n";
    }
    if (content_length) {
        h += "Content-Length: ";
        h += std::to_string(*content_length);
        h += "\r\n";
    } else {
        h += "Transfer-Encoding: chunked\r\n";
    }
    if (!request_id.empty()) {
        h += "x-request-id: ";
        h += request_id;
        h += "\r\n";
    }
    for (const auto& [k, v] : extra) {
        h += k;
        h += ": ";
        h += v;
        h += "\r\n";
    }
    if (added != nullptr) {
        for (const auto& [k, v] : added->fields()) {
            h += k;
            h += ": ";
            h += v;
            h += "\r\n";
        }
    }
    if (close) {
        h += "Connection: close\r\n";
    }
    h += "\r\n";
    return h;
}

net::awaitable<bool> write_client(ClientLink& link, RequestContext& ctx,
                                  std::span<const net::const_buffer> buffers) {
    if (link.gone) {
        co_return false;
    }
    link.deadline.expires_after(ctx.runtime.config().server.write_timeout);
    auto [ec, n] = co_await net::async_write(link.socket, buffers, use_nothrow);
    link.deadline.clear();
    ctx.bytes_out += n;
    if (ctx.first_byte.time_since_epoch().count() == 0 && n > 0) {
        ctx.first_byte = RequestContext::Clock::now();
    }
    if (ec) {
        link.gone = true;
        co_return false;
    }
    co_return true;
}

namespace {
/// A value safe to put in a response header: visible ASCII and spaces only, capped (a model name
/// comes from the client and may carry "\r\n" through a JSON escape).
std::string header_safe(std::string_view v) {
    std::string out;
    for (const char c : v.substr(0, 200)) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
    }
    return out;
}
}  // namespace

void add_transparency_headers(const RequestContext& ctx, ExtraHeaders& extra) {
    if (ctx.attempts.empty()) {
        return;
    }
    using std::chrono::duration_cast;
    using std::chrono::microseconds;
    const auto total = RequestContext::Clock::now() - ctx.started;
    const auto outside = ctx.upstream_time + ctx.retry_wait;
    const auto inside = total > outside ? total - outside : RequestContext::Clock::duration{};
    const Attempt& last = ctx.attempts.back();
    if (last.provider != nullptr) {
        extra.emplace_back("x-sluice-provider", header_safe(last.provider->name()));
    }
    if (last.route != nullptr && last.route != ctx.route) {
        extra.emplace_back("x-sluice-route", header_safe(last.route->name));  // a fallback route answered
    }
    extra.emplace_back("x-sluice-model", header_safe(last.model));
    extra.emplace_back("x-sluice-attempts", std::to_string(ctx.attempts.size()));
    const auto inside_us = duration_cast<microseconds>(inside).count();
    const auto upstream_us = duration_cast<microseconds>(ctx.upstream_time).count();
    extra.emplace_back("x-sluice-overhead-us", std::to_string(inside_us));
    char timing[128];
    int len = std::snprintf(timing, sizeof timing, "sluice;dur=%.3f, upstream;dur=%.3f",
                            static_cast<double>(inside_us) / 1000.0,
                            static_cast<double>(upstream_us) / 1000.0);
    if (ctx.retry_wait.count() > 0 && len > 0 && static_cast<std::size_t>(len) < sizeof timing) {
        const auto wait_us = duration_cast<microseconds>(ctx.retry_wait).count();
        std::snprintf(timing + len, sizeof timing - static_cast<std::size_t>(len), ", retry-wait;dur=%.3f",
                      static_cast<double>(wait_us) / 1000.0);
    }
    extra.emplace_back("server-timing", timing);
}

std::string answer_head(const RequestContext& ctx, int status, std::string_view content_type,
                        std::optional<std::size_t> content_length, bool close, ExtraHeaders extra) {
    add_transparency_headers(ctx, extra);
    if (!ctx.filtered) {
        return response_head(status, content_type, content_length, ctx.request_id, close, extra);
    }
    ResponseHeaders added;
    ctx.runtime.filters().on_response_head(ctx, status, added);
    return response_head(status, content_type, content_length, ctx.request_id, close, extra, &added);
}

net::awaitable<bool> send_body(ClientLink& link, RequestContext& ctx, int status,
                               std::string_view content_type, const std::string& body, bool close,
                               const ExtraHeaders& extra) {
    ctx.status = status;
    const std::string head = answer_head(ctx, status, content_type, body.size(), close, extra);
    const std::array<net::const_buffer, 2> bufs{net::buffer(head), net::buffer(body)};
    co_return co_await write_client(link, ctx, bufs);
}

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

net::awaitable<bool> send_error(ClientLink& link, RequestContext& ctx, const GatewayError& err,
                                bool close) {
    ExtraHeaders extra;
    if (!err.retry_after.empty()) {
        extra.emplace_back("Retry-After", err.retry_after);
    }
    ctx.error_code = err.code;
    // The Anthropic front door answers errors in Anthropic's shape.
    const std::string body = anthropic_format(ctx.endpoint) ? anthropic_error_json(err) : err.to_json();
    co_return co_await send_body(link, ctx, err.status, "application/json", body,
                                 close || err.close_connection, extra);
}

namespace {

enum class BodyWait { more, closed, timed_out };

/// Waits for more request-body bytes from the client.
net::awaitable<BodyWait> wait_body_bytes(std::shared_ptr<ClientLink> link) {
    if (link->eof || link->read_error) {
        co_return BodyWait::closed;
    }
    co_await wait_client_read(link);
    co_return link->deadline.expired() ? BodyWait::timed_out : BodyWait::more;
}

/// After an answer sent before the request was read to its end: stop sending, then read and
/// discard what the client is still sending (at most 64 KiB, 2 s, or the rest of a known body
/// length) so that closing does not reset the connection and destroy the answer in flight.
net::awaitable<void> lingering_close(std::shared_ptr<ClientLink> link,
                                     std::optional<std::uint64_t> body_left) {
    constexpr std::size_t kMaxDiscard = 64 * 1024;
    error_code ignored;
    link->socket.shutdown(tcp::socket::shutdown_send, ignored);
    link->deadline.expires_after(std::chrono::seconds(2));
    std::size_t discarded = 0;
    const auto known_end = [&] { return body_left && discarded >= *body_left; };
    discarded += link->inbuf.size();
    link->inbuf.clear();
    while (discarded < kMaxDiscard && !known_end() && !link->eof && !link->read_error &&
           !link->deadline.expired()) {
        co_await wait_client_read(link);
        discarded += link->inbuf.size();
        link->inbuf.clear();
    }
    link->deadline.clear();
}

/// Answers a request that could not be parsed (no context yet), then closes lingering.
/// `body_left`: the request-body bytes still unread (those buffered included), when known.
net::awaitable<void> reject(std::shared_ptr<ClientLink> link, const Runtime& rt,
                            const http1::ParseError& perr,
                            std::optional<std::uint64_t> body_left = std::nullopt) {
    http1::MessageHead none;
    RequestContext ctx(rt, none);
    ctx.request_id = random_request_id();
    GatewayError err;
    switch (perr.status) {
        case 413: err = GatewayError::payload_too_large(perr.message); break;
        case 414: err = GatewayError::uri_too_long(); break;
        case 431: err = GatewayError::headers_too_large(perr.message); break;
        case 408: err = GatewayError::request_timeout(); break;
        default:
            err = GatewayError::bad_request(perr.message, perr.code);
            err.status = perr.status;
    }
    err.close_connection = true;
    const bool sent = co_await send_error(*link, ctx, err, true);
    log::debug("rejected a request: {} {}", perr.status, perr.message);
    if (sent) {
        co_await lingering_close(link, body_left);
    }
}

net::awaitable<void> list_models(Worker& worker, ClientLink& link, RequestContext& ctx,
                                 std::string_view only, bool& close) {
    const Runtime& rt = ctx.runtime;
    std::string body = "{\"object\":\"list\",\"data\":[";
    std::set<std::string> seen;
    bool first = true;
    bool found = false;
    auto add = [&](const std::string& id, const std::string& owner) {
        if (!seen.insert(id).second || (ctx.key != nullptr && !ctx.key->allows(id))) {
            return;
        }
        if (!only.empty() && id != only) {
            return;
        }
        found = true;
        std::string item = "{\"id\":";
        append_json_string(item, id);
        item += ",\"object\":\"model\",\"created\":0,\"owned_by\":";
        append_json_string(item, owner);
        item += '}';
        if (!only.empty()) {
            body = std::move(item);
            return;
        }
        if (!first) {
            body += ',';
        }
        first = false;
        body += item;
    };
    for (const Route& route : rt.routes()) {
        if (route.pattern.empty()) {
            continue;  // fallback-only: clients cannot ask for it
        }
        if (!route.glob) {
            add(route.pattern, route.targets.front().provider->name());
            continue;
        }
        for (const Target& t : route.targets) {
            const std::vector<std::string> ids =
                co_await provider_models(worker, ctx.runtime, *t.provider, ctx.request_id);
            for (const auto& id : ids) {
                if (route.matches(id)) {
                    add(id, t.provider->name());
                }
            }
        }
    }
    if (!only.empty()) {
        if (!found) {
            auto err = GatewayError::model_not_found(only);
            co_await send_error(link, ctx, err, close);
            co_return;
        }
    } else {
        body += "]}";
    }
    if (!co_await send_body(link, ctx, 200, "application/json", body, close)) {
        close = true;
    }
}

/// A 200 a request filter answers with: a JSON body, or a whole event stream in one chunk.
net::awaitable<void> serve(ClientLink& link, RequestContext& ctx, const ServedResponse& r,
                           bool& close) {
    ctx.usage = r.usage;
    if (!r.stream) {
        if (!co_await send_body(link, ctx, 200, "application/json", r.body, close)) {
            close = true;
        }
        co_return;
    }
    ctx.status = 200;
    ExtraHeaders stream_headers{{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
    const std::string head = answer_head(ctx, 200, "text/event-stream", std::nullopt, close, stream_headers);
    std::string frame;
    if (!co_await write_chunk(link, ctx, head, r.body, true, frame)) {
        close = true;
    }
}

/// The filters, then the model list or the forwarder, behind the last-resort handler: an
/// exception (a bug: the data plane reads untrusted input without throwing) becomes a 500
/// JSON answer when no response byte was sent yet, else a closed connection; the caller still
/// writes the access-log line.
net::awaitable<void> dispatch(Worker& worker, std::shared_ptr<ClientLink> link, RequestContext& ctx,
                              std::string_view model_id, bool& close) {
    std::string what;
    try {
        const RequestVerdict verdict = co_await ctx.runtime.filters().on_request(ctx);
        if (verdict.kind == RequestVerdict::Kind::reject) {
            ctx.served = true;
            co_await send_error(*link, ctx, verdict.error, close);
        } else if (verdict.kind == RequestVerdict::Kind::serve) {
            ctx.served = true;
            co_await serve(*link, ctx, verdict.served, close);
        } else if (ctx.endpoint == Endpoint::models) {
            co_await list_models(worker, *link, ctx, model_id, close);
        } else {
            co_await forward(link, ctx, close);
        }
        co_return;
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
        what = "unknown exception";
    }
    worker.server().unexpected_errors.fetch_add(1, std::memory_order_relaxed);
    log::error("request {}: unexpected internal error: {}", ctx.request_id, scrub_secrets(what, std::string_view{}, 512));
    close = true;
    if (ctx.status == 0 && !link->gone) {
        const auto err = GatewayError::internal("An internal error stopped this request; it was logged.");
        co_await send_error(*link, ctx, err, true);
    } else if (ctx.status == 0) {
        ctx.status = 499;
    }
    ctx.error_code = "internal_error";
}

}  // namespace

net::awaitable<void> run_session(Worker& worker, tcp::socket socket) {
    auto link = std::make_shared<ClientLink>(std::move(socket), worker);
    LinkRegistration registration(worker, link.get());
    error_code ignored;
    link->socket.set_option(tcp::no_delay(true), ignored);
    std::size_t served = 0;
    try {
        while (true) {
            // The limits and timeouts for reading the next head come from the snapshot current
            // now; the request itself takes a fresh one once its head is in (below).
            const std::shared_ptr<const Runtime> idle_rt = worker.runtime();
            const auto& isc = idle_rt->config().server;
            http1::HeadLimits limits;
            limits.max_head_bytes = isc.max_header_bytes;
            limits.max_start_line = std::min<std::size_t>(8192, isc.max_header_bytes);

            // 1. The request head: keep-alive idle time until the first byte, then the header
            //    timeout (absolute) for the rest of it.
            http1::MessageHead head;
            std::size_t consumed = 0;
            http1::ParseError perr;
            http1::HeadScan scan;  // a head trickling in is scanned once, not per read
            bool started = !link->inbuf.empty();
            // A new connection gets header_timeout for its first request: a client that connects
            // and sends nothing must not hold a descriptor for the keep-alive idle time.
            link->deadline.expires_after(started || served == 0 ? isc.header_timeout : isc.idle_timeout);
            bool done = false;
            while (!done) {
                const auto st = http1::parse_request_head(link->inbuf, limits, head, consumed, perr,
                                                          &scan);
                if (st == http1::ParseStatus::done) {
                    done = true;
                    break;
                }
                if (st == http1::ParseStatus::error) {
                    link->deadline.clear();
                    co_await reject(link, *idle_rt, perr);
                    co_return;
                }
                if (link->eof || link->read_error || (worker.server().draining() && !started)) {
                    co_return;
                }
                co_await wait_client_read(link);
                if (link->deadline.expired()) {
                    if (started) {
                        http1::ParseError timeout{408, "request_timeout", "timeout"};
                        link->deadline.clear();
                        co_await reject(link, *idle_rt, timeout);
                    }
                    co_return;
                }
                if (!started && !link->inbuf.empty()) {
                    started = true;
                    link->deadline.expires_after(isc.header_timeout);
                }
            }
            link->inbuf.erase(0, consumed);
            // The request runs on the snapshot current when its head arrived, not on the one
            // the connection held while it sat idle: a reload in between applies to it.
            const std::shared_ptr<const Runtime> runtime = worker.runtime();
            const auto& sc = runtime->config().server;
            // In flight from its head on: a request still uploading its body when the drain
            // begins is waited for and served, not answered 503 or cut when the workers stop.
            ActiveRequest active(worker.server());
            const bool admitted = !worker.server().draining();
            link->receiving = true;

            // 2. The body: 413 before reading when Content-Length is over the limit.
            std::string body;
            const http1::ParseError too_large{
                413, "request_too_large",
                "The request body exceeds " + std::to_string(sc.max_body_bytes) + " bytes."};
            const http1::ParseError body_timeout{408, "request_timeout",
                                                 "The request body was not received in time."};
            if (head.content_length && *head.content_length > sc.max_body_bytes) {
                link->deadline.clear();
                co_await reject(link, *runtime, too_large, *head.content_length);
                co_return;
            }
            const bool has_body = (head.content_length && *head.content_length > 0) || head.chunked;
            if (has_body && head.expect_continue && link->inbuf.empty()) {
                static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
                link->deadline.expires_after(sc.write_timeout);
                auto [ec, n] = co_await net::async_write(link->socket, net::buffer(kContinue),
                                                         use_nothrow);
                if (ec) {
                    co_return;
                }
            }
            link->deadline.expires_after(sc.body_timeout);
            if (head.content_length) {
                const auto need = static_cast<std::size_t>(*head.content_length);
                while (link->inbuf.size() < need) {
                    const BodyWait w = co_await wait_body_bytes(link);
                    if (w == BodyWait::closed) {
                        co_return;
                    }
                    if (w == BodyWait::timed_out) {
                        link->deadline.clear();
                        co_await reject(link, *runtime, body_timeout);
                        co_return;
                    }
                }
                body.assign(link->inbuf, 0, need);
                link->inbuf.erase(0, need);
            } else if (head.chunked) {
                http1::ChunkedDecoder decoder;
                while (true) {
                    const auto used = decoder.feed(link->inbuf, body);
                    if (decoder.failed()) {
                        link->deadline.clear();
                        co_await reject(link, *runtime, decoder.error());
                        co_return;
                    }
                    link->inbuf.erase(0, used);
                    if (body.size() > sc.max_body_bytes) {
                        link->deadline.clear();
                        co_await reject(link, *runtime, too_large);
                        co_return;
                    }
                    if (decoder.done()) {
                        break;
                    }
                    const BodyWait w = co_await wait_body_bytes(link);
                    if (w == BodyWait::closed) {
                        co_return;
                    }
                    if (w == BodyWait::timed_out) {
                        link->deadline.clear();
                        co_await reject(link, *runtime, body_timeout);
                        co_return;
                    }
                }
            }
            link->deadline.clear();
            ++served;

            // 3. Dispatch.
            RequestContext ctx(*runtime, head);
            const auto client_id = head.find("x-request-id");
            ctx.request_id = sane_request_id(client_id) ? std::string(client_id) : random_request_id();
            ctx.bytes_in = consumed + body.size();
            bool close = !head.keep_alive || served >= sc.max_requests_per_connection ||
                         worker.server().draining();
            const std::string_view target = head.target;
            const auto q = target.find('?');
            const std::string_view path = api_path(target.substr(0, q));
            const std::string_view method = head.method;

            link->busy = true;
            link->receiving = false;
            start_client_read(link);  // watch for a disconnect while the request runs

            if (target.empty() || target.front() != '/') {
                // Absolute-form, authority-form and '*': sluice is not a forward proxy.
                const auto err = GatewayError::bad_request(
                    "Only origin-form request targets are accepted.", "invalid_request_target");
                co_await send_error(*link, ctx, err, true);
                co_return;
            }
            if (path == "/healthz" || path == "/readyz") {
                static const std::string kOk = "{\"status\":\"ok\"}";
                static const std::string kReady = "{\"status\":\"ready\"}";
                static const std::string kDraining = "{\"status\":\"draining\"}";
                if (method != "GET" && method != "HEAD") {
                    const auto err = GatewayError::method_not_allowed("Use GET.");
                    co_await send_error(*link, ctx, err, close);
                } else if (path == "/readyz" && worker.server().draining()) {
                    co_await send_body(*link, ctx, 503, "application/json", kDraining, close);
                } else {
                    const std::string& answer = path == "/healthz" ? kOk : kReady;
                    co_await send_body(*link, ctx, 200, "application/json", answer, close);
                }
            } else {
                Endpoint endpoint = Endpoint::chat_completions;
                bool known = true;
                std::string_view model_id;
                const char* allowed = "POST";
                if (path == "/chat/completions") {
                    endpoint = Endpoint::chat_completions;
                } else if (path == "/completions") {
                    endpoint = Endpoint::completions;
                } else if (path == "/embeddings") {
                    endpoint = Endpoint::embeddings;
                } else if (path == "/messages") {
                    endpoint = Endpoint::messages;
                } else if (path == "/messages/count_tokens") {
                    endpoint = Endpoint::count_tokens;
                } else if (path == "/models") {
                    endpoint = Endpoint::models;
                    allowed = "GET";
                } else if (path.rfind("/models/", 0) == 0 && path.size() > 8) {
                    endpoint = Endpoint::models;
                    model_id = path.substr(8);
                    allowed = "GET";
                } else {
                    known = false;
                }
                ctx.endpoint = endpoint;
                ctx.filtered = true;
                if (!known) {
                    std::string msg = "Unknown endpoint: ";
                    msg += method;
                    msg += ' ';
                    msg += target.substr(0, std::min<std::size_t>(q, 200));
                    const auto err = GatewayError::not_found(msg, "unknown_url");
                    co_await send_error(*link, ctx, err, close);
                } else if (method != allowed) {
                    ExtraHeaders extra{{"Allow", allowed}};
                    auto err = GatewayError::method_not_allowed(std::string("Use ") + allowed + ".");
                    ctx.error_code = err.code;
                    const std::string body405 = err.to_json();
                    co_await send_body(*link, ctx, 405, "application/json", body405, close, extra);
                } else if (!admitted) {  // its head came after the drain began
                    const auto err = GatewayError::draining();
                    co_await send_error(*link, ctx, err, true);
                    close = true;
                } else {
                    ctx.api.body = std::move(body);
                    co_await dispatch(worker, link, ctx, model_id, close);
                }
                ctx.client_gone = link->gone;
                if (ctx.client_gone && ctx.status == 0) {
                    ctx.status = 499;
                }
                // Exactly once per request that reached the filters; the access log is last.
                const Outcome outcome = outcome_of(ctx);
                runtime->filters().on_complete(ctx, outcome);
            }
            link->busy = false;
            if (close || link->gone || worker.server().draining()) {
                link->socket.shutdown(tcp::socket::shutdown_send, ignored);
                co_return;
            }
        }
    } catch (const std::exception& e) {
        log::error("session ended by an unexpected error: {}", e.what());
    }
}

}  // namespace sluice
