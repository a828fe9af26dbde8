// The client response writer (see client_writer.hpp).
#include "server/client_writer.hpp"

#include <algorithm>

#include <chrono>
#include <cstdio>
#include <ctime>

#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>

#include "sse/sse.hpp"
#include "util/strings.hpp"

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

}  // namespace

std::string response_head(int status, std::string_view content_type,
                          std::optional<std::size_t> content_length, std::string_view request_id, bool close,
                          const HeadExtras& extras) {
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
    if (extras.extra != nullptr) {
        for (const auto& [k, v] : *extras.extra) {
            h += k;
            h += ": ";
            h += v;
            h += "\r\n";
        }
    }
    if (extras.transparency != nullptr) {
        append_transparency_headers(*extras.transparency, h);
    }
    if (extras.added != nullptr) {
        for (const auto& [k, v] : extras.added->fields()) {
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
        link.close = true;
        co_return false;
    }
    co_return true;
}

namespace {
/// A value safe to put in a response header: visible ASCII and spaces only, capped (a model name
/// comes from the client and may carry "\r\n" through a JSON escape).
/// A header value from configured or client-chosen text: printable ASCII only, at most 200 bytes.
void append_header_safe(std::string& out, std::string_view v) {
    for (const char c : v.substr(0, 200)) {
        const auto u = static_cast<unsigned char>(c);
        out.push_back(u >= 0x20 && u < 0x7f ? c : '?');
    }
}

/// Microseconds as milliseconds with three decimals ("4.567").
void append_millis(std::string& h, std::int64_t us) {
    h += NumberText::fixed3(static_cast<double>(std::max<std::int64_t>(us, 0)) / 1000.0).view();
}

void append_header(std::string& h, std::string_view name, std::string_view safe_value) {
    h += name;
    h += ": ";
    h += safe_value;
    h += "\r\n";
}
}  // namespace

void append_transparency_headers(const RequestContext& ctx, std::string& h) {
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
        h += "x-sluice-provider: ";
        append_header_safe(h, last.provider->name());
        h += "\r\n";
    }
    if (last.route != nullptr && last.route != ctx.route) {
        h += "x-sluice-route: ";  // a fallback route answered
        append_header_safe(h, last.route->name);
        h += "\r\n";
    }
    h += "x-sluice-model: ";
    append_header_safe(h, last.model);
    h += "\r\n";
    append_header(h, "x-sluice-attempts",
                  NumberText::integer(static_cast<std::int64_t>(ctx.attempts.size())).view());
    const auto inside_us = duration_cast<microseconds>(inside).count();
    const auto upstream_us = duration_cast<microseconds>(ctx.upstream_time).count();
    append_header(h, "x-sluice-overhead-us", NumberText::integer(inside_us).view());
    // server-timing: sluice;dur=0.123, upstream;dur=4.567[, retry-wait;dur=...] (milliseconds)
    h += "server-timing: sluice;dur=";
    append_millis(h, inside_us);
    h += ", upstream;dur=";
    append_millis(h, upstream_us);
    if (ctx.retry_wait.count() > 0) {
        h += ", retry-wait;dur=";
        append_millis(h, duration_cast<microseconds>(ctx.retry_wait).count());
    }
    h += "\r\n";
}

std::string answer_head(const ClientLink& link, const RequestContext& ctx, int status,
                        std::string_view content_type, std::optional<std::size_t> content_length,
                        const ExtraHeaders& extra) {
    HeadExtras extras{&extra, &ctx, nullptr};
    ResponseHeaders added;
    if (ctx.filtered) {
        ctx.runtime.filters().on_response_head(ctx, status, added);
        extras.added = &added;
    }
    return response_head(status, content_type, content_length, ctx.request_id, link.close, extras);
}

net::awaitable<bool> send_body(ClientLink& link, RequestContext& ctx, int status,
                               std::string_view content_type, const std::string& body,
                               const ExtraHeaders& extra) {
    ctx.status = status;
    const std::string head = answer_head(link, ctx, status, content_type, body.size(), extra);
    const std::array<net::const_buffer, 2> bufs{net::buffer(head), net::buffer(body)};
    co_return co_await write_client(link, ctx, bufs);
}

net::awaitable<bool> write_chunk(ClientLink& link, RequestContext& ctx, const std::string& prefix,
                                 const std::string& events, bool last) {
    // Gathered (one sendmsg): the events are not copied into a frame.
    static constexpr std::string_view kEnd = "\r\n";
    static constexpr std::string_view kEndLast = "\r\n0\r\n\r\n";
    static constexpr std::string_view kLast = "0\r\n\r\n";
    char size_line[24];
    std::size_t size_len = 0;
    std::string_view trailer = last ? kLast : std::string_view{};
    if (!events.empty()) {
        const int n = std::snprintf(size_line, sizeof size_line, "%zx\r\n", events.size());
        size_len = static_cast<std::size_t>(n);
        trailer = last ? kEndLast : kEnd;
    }
    const std::array<net::const_buffer, 4> bufs{net::buffer(prefix), net::buffer(size_line, size_len),
                                                net::buffer(events),
                                                net::buffer(trailer.data(), trailer.size())};
    co_return co_await write_client(link, ctx, bufs);
}

net::awaitable<bool> send_error(ClientLink& link, RequestContext& ctx, const GatewayError& err) {
    ExtraHeaders extra;
    if (!err.retry_after.empty()) {
        extra.emplace_back("Retry-After", err.retry_after);
    }
    ctx.error_code = err.code;
    if (err.close_connection) {
        link.close = true;
    }
    // The Anthropic front door answers errors in Anthropic's shape.
    const std::string body = anthropic_format(ctx.endpoint) ? err.to_anthropic_json() : err.to_json();
    co_return co_await send_body(link, ctx, err.status, "application/json", body, extra);
}

std::string terminal_error_event(const GatewayError& e, Endpoint endpoint) {
    std::string out;
    if (anthropic_format(endpoint)) {
        out = "event: error\ndata: " + e.to_anthropic_json() + "\n\n";
    } else {
        sse::encode_data(e.to_json(), out);
    }
    return out;
}

std::string stream_head(const ClientLink& link, const RequestContext& ctx) {
    static const ExtraHeaders stream_headers{{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
    return answer_head(link, ctx, 200, "text/event-stream", std::nullopt, stream_headers);
}

net::awaitable<void> send_served(ClientLink& link, RequestContext& ctx, const ServedResponse& r) {
    ctx.usage = r.usage;
    if (!r.stream) {
        co_await send_body(link, ctx, 200, "application/json", r.body);
        co_return;
    }
    ctx.status = 200;
    const std::string head = stream_head(link, ctx);
    co_await write_chunk(link, ctx, head, r.body, true);
}

}  // namespace sluice
