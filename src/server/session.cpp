// The downstream session: reads requests from one client connection (keep-alive, pipelining),
// enforces the limits and timeouts of RELIABILITY.md §1.1, and dispatches them.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <set>

#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>

#include "http/http_parser.hpp"
#include "log/log.hpp"
#include "server/client_writer.hpp"
#include "server/server.hpp"
#include "util/scrub.hpp"
#include "util/strings.hpp"

#include <sluice/version.hpp>

namespace sluice {

namespace {

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

namespace {

enum class BodyWait {
    more,
    closed,
    timed_out
};

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
        default: err = GatewayError::bad_request(perr.message, perr.code); err.status = perr.status;
    }
    err.close_connection = true;
    link->close = true;
    const bool sent = co_await send_error(*link, ctx, err);
    log::debug("rejected a request: {} {}", perr.status, perr.message);
    if (sent) {
        co_await lingering_close(link, body_left);
    }
}

/// The request handler (the proxy) behind the last-resort handler: an exception (a bug: the
/// data plane reads untrusted input without throwing) becomes a 500 JSON answer when no
/// response byte was sent yet, else a closed connection; the caller still runs the completion
/// hooks.
net::awaitable<void> dispatch(Worker& worker, std::shared_ptr<ClientLink> link, RequestContext& ctx,
                              std::string_view model_id) {
    std::string what;
    try {
        co_await worker.server().handler().handle(link, ctx, model_id);
        co_return;
    } catch (const std::exception& e) {
        what = e.what();
    } catch (...) {
        what = "unknown exception";
    }
    worker.server().unexpected_errors.fetch_add(1, std::memory_order_relaxed);
    log::error("request {}: unexpected internal error: {}", ctx.request_id,
               scrub_secrets(what, std::string_view{}, 512));
    link->close = true;
    if (ctx.status == 0 && !link->gone) {
        const auto err = GatewayError::internal("An internal error stopped this request; it was logged.");
        co_await send_error(*link, ctx, err);
    } else if (ctx.status == 0) {
        ctx.status = 499;
    }
    ctx.error_code = "internal_error";
}

/// Reads the next request head into `head` (`consumed`: its bytes in link->inbuf). Keep-alive
/// idle time until the first byte, then the header timeout (absolute) for the rest of it; a new
/// connection gets header_timeout for its first request, so a client that connects and sends
/// nothing does not hold a descriptor for the keep-alive idle time. false: the session ends
/// (answered 400/408/414/431 where due).
net::awaitable<bool> read_head(Worker& worker, std::shared_ptr<ClientLink> link, std::size_t served,
                               http1::MessageHead& head, std::size_t& consumed) {
    // The limits and timeouts for reading the next head come from the snapshot current now;
    // the request itself takes a fresh one once its head is in.
    const std::shared_ptr<const Runtime> idle_rt = worker.runtime();
    const auto& isc = idle_rt->config().server;
    http1::HeadLimits limits;
    limits.max_head_bytes = isc.max_header_bytes;
    limits.max_start_line = std::min<std::size_t>(8192, isc.max_header_bytes);
    http1::ParseError perr;
    http1::HeadScan scan;  // a head trickling in is scanned once, not per read
    bool started = !link->inbuf.empty();
    link->deadline.expires_after(started || served == 0 ? isc.header_timeout : isc.idle_timeout);
    while (true) {
        const auto st = http1::parse_request_head(link->inbuf, limits, head, consumed, perr, &scan);
        if (st == http1::ParseStatus::done) {
            co_return true;
        }
        if (st == http1::ParseStatus::error) {
            link->deadline.clear();
            co_await reject(link, *idle_rt, perr);
            co_return false;
        }
        if (link->eof || link->read_error || (worker.server().draining() && !started)) {
            co_return false;
        }
        co_await wait_client_read(link);
        if (link->deadline.expired()) {
            if (started) {
                const http1::ParseError timeout{408, "request_timeout", "timeout"};
                link->deadline.clear();
                co_await reject(link, *idle_rt, timeout);
            }
            co_return false;
        }
        if (!started && !link->inbuf.empty()) {
            started = true;
            link->deadline.expires_after(isc.header_timeout);
        }
    }
}

/// Reads the request body (Content-Length or chunked) into `body`: 413 before reading when the
/// declared length is over the limit, 100 Continue when asked for, the body timeout. false: the
/// session ends (answered where due).
net::awaitable<bool> read_body(std::shared_ptr<ClientLink> link, const Runtime& rt,
                               const http1::MessageHead& head, std::string& body) {
    const auto& sc = rt.config().server;
    const http1::ParseError too_large{
        413, "request_too_large",
        "The request body exceeds " + std::to_string(sc.max_body_bytes) + " bytes."};
    const http1::ParseError body_timeout{408, "request_timeout",
                                         "The request body was not received in time."};
    if (head.content_length && *head.content_length > sc.max_body_bytes) {
        link->deadline.clear();
        co_await reject(link, rt, too_large, *head.content_length);
        co_return false;
    }
    const bool has_body = (head.content_length && *head.content_length > 0) || head.chunked;
    if (has_body && head.expect_continue && link->inbuf.empty()) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        link->deadline.expires_after(sc.write_timeout);
        auto [ec, n] = co_await net::async_write(link->socket, net::buffer(kContinue), use_nothrow);
        if (ec) {
            co_return false;
        }
    }
    link->deadline.expires_after(sc.body_timeout);
    http1::ChunkedDecoder decoder;
    const auto need = static_cast<std::size_t>(head.content_length.value_or(0));
    while (true) {
        if (head.chunked) {
            const auto used = decoder.feed(link->inbuf, body);
            if (decoder.failed()) {
                link->deadline.clear();
                co_await reject(link, rt, decoder.error());
                co_return false;
            }
            link->inbuf.erase(0, used);
            if (body.size() > sc.max_body_bytes) {
                link->deadline.clear();
                co_await reject(link, rt, too_large);
                co_return false;
            }
            if (decoder.done()) {
                break;
            }
        } else if (link->inbuf.size() >= need) {
            body.assign(link->inbuf, 0, need);
            link->inbuf.erase(0, need);
            break;
        }
        const BodyWait w = co_await wait_body_bytes(link);
        if (w == BodyWait::closed) {
            co_return false;
        }
        if (w == BodyWait::timed_out) {
            link->deadline.clear();
            co_await reject(link, rt, body_timeout);
            co_return false;
        }
    }
    link->deadline.clear();
    co_return true;
}

/// An API path: its endpoint and the one method it takes; known false for anything else.
struct ApiRoute {
    bool known = false;
    Endpoint endpoint = Endpoint::chat_completions;
    const char* method = "POST";
    std::string_view model_id;  ///< GET /models/{id}
};

ApiRoute api_route(std::string_view path) {
    static constexpr std::pair<std::string_view, Endpoint> kPost[] = {
        {"/chat/completions", Endpoint::chat_completions},
        {"/completions", Endpoint::completions},
        {"/embeddings", Endpoint::embeddings},
        {"/messages", Endpoint::messages},
        {"/messages/count_tokens", Endpoint::count_tokens},
    };
    for (const auto& [p, e] : kPost) {
        if (path == p) {
            return ApiRoute{true, e, "POST", {}};
        }
    }
    if (path == "/models") {
        return ApiRoute{true, Endpoint::models, "GET", {}};
    }
    if (path.rfind("/models/", 0) == 0 && path.size() > 8) {
        return ApiRoute{true, Endpoint::models, "GET", path.substr(8)};
    }
    return ApiRoute{};
}

/// /healthz and /readyz: answered by the server itself.
net::awaitable<void> health_answer(Worker& worker, ClientLink& link, RequestContext& ctx,
                                   std::string_view path) {
    static const std::string kOk = "{\"status\":\"ok\"}";
    static const std::string kReady = "{\"status\":\"ready\"}";
    static const std::string kDraining = "{\"status\":\"draining\"}";
    if (ctx.head.method != "GET" && ctx.head.method != "HEAD") {
        const auto err = GatewayError::method_not_allowed("Use GET.");
        co_await send_error(link, ctx, err);
    } else if (path == "/readyz" && worker.server().draining()) {
        co_await send_body(link, ctx, 503, "application/json", kDraining);
    } else {
        const std::string& answer = path == "/healthz" ? kOk : kReady;
        co_await send_body(link, ctx, 200, "application/json", answer);
    }
}

/// An API request: unknown paths (404), wrong methods (405), requests whose head came after the
/// drain began (503), else the request handler. Then the completion hooks, exactly once.
net::awaitable<void> api_answer(Worker& worker, std::shared_ptr<ClientLink> link, RequestContext& ctx,
                                std::string_view path, bool admitted, std::string body) {
    const ApiRoute route = api_route(path);
    const std::string_view target = ctx.head.target;
    const auto q = target.find('?');
    ctx.endpoint = route.endpoint;
    ctx.filtered = true;
    if (!route.known) {
        std::string msg = "Unknown endpoint: ";
        msg += ctx.head.method;
        msg += ' ';
        msg += target.substr(0, std::min<std::size_t>(q, 200));
        const auto err = GatewayError::not_found(msg, "unknown_url");
        co_await send_error(*link, ctx, err);
    } else if (ctx.head.method != route.method) {
        ExtraHeaders extra{{"Allow", route.method}};
        auto err = GatewayError::method_not_allowed(std::string("Use ") + route.method + ".");
        ctx.error_code = err.code;
        const std::string body405 = err.to_json();
        co_await send_body(*link, ctx, 405, "application/json", body405, extra);
    } else if (!admitted) {  // its head came after the drain began
        const auto err = GatewayError::draining();
        link->close = true;
        co_await send_error(*link, ctx, err);
    } else {
        ctx.api.body = std::move(body);
        co_await dispatch(worker, link, ctx, route.model_id);
    }
    ctx.client_gone = link->gone;
    if (ctx.client_gone && ctx.status == 0) {
        ctx.status = 499;
    }
    // Exactly once per request that reached the filters; the access log is last.
    const Outcome outcome = outcome_of(ctx);
    ctx.runtime.filters().on_complete(ctx, outcome);
}

/// One request whose head and body were read. false: the session ends now.
net::awaitable<bool> answer(Worker& worker, std::shared_ptr<ClientLink> link, const Runtime& rt,
                            const http1::MessageHead& head, std::string body, std::size_t head_bytes,
                            bool admitted) {
    RequestContext ctx(rt, head);
    ctx.connection = &link->memo;
    const auto client_id = head.find("x-request-id");
    ctx.request_id = sane_request_id(client_id) ? std::string(client_id) : random_request_id();
    ctx.bytes_in = head_bytes + body.size();
    const std::string_view target = head.target;
    const std::string_view path = api_path(target.substr(0, target.find('?')));
    link->busy = true;
    link->receiving = false;
    start_client_read(link);  // watch for a disconnect while the request runs
    if (target.empty() || target.front() != '/') {
        // Absolute-form, authority-form and '*': sluice is not a forward proxy.
        const auto err = GatewayError::bad_request("Only origin-form request targets are accepted.",
                                                   "invalid_request_target");
        link->close = true;
        co_await send_error(*link, ctx, err);
        co_return false;
    }
    if (path == "/healthz" || path == "/readyz") {
        co_await health_answer(worker, *link, ctx, path);
    } else {
        co_await api_answer(worker, link, ctx, path, admitted, std::move(body));
    }
    link->busy = false;
    co_return true;
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
            http1::MessageHead head;
            std::size_t consumed = 0;
            if (!co_await read_head(worker, link, served, head, consumed)) {
                co_return;
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
            std::string body;
            if (!co_await read_body(link, *runtime, head, body)) {
                co_return;
            }
            ++served;
            link->close =
                !head.keep_alive || served >= sc.max_requests_per_connection || worker.server().draining();
            if (!co_await answer(worker, link, *runtime, head, std::move(body), consumed, admitted)) {
                co_return;
            }
            if (link->close || link->gone || worker.server().draining()) {
                link->socket.shutdown(tcp::socket::shutdown_send, ignored);
                co_return;
            }
        }
    } catch (const std::exception& e) {
        log::error("session ended by an unexpected error: {}", e.what());
    }
}

}  // namespace sluice
