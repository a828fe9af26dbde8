#include "mock_upstream.hpp"

#include <chrono>
#include <cstdio>
#include <deque>
#include <tuple>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include "mock_anthropic.hpp"
#include "mock_bedrock.hpp"
#include "mock_gemini.hpp"
#include "providers/mock_provider.hpp"

namespace sluice::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using nlohmann::json;
constexpr auto nothrow = net::as_tuple(net::use_awaitable);

std::string RecordedRequest::header(const std::string& name) const {
    for (const auto& [k, v] : headers) {
        if (beast::iequals(k, name)) {
            return v;
        }
    }
    return {};
}

struct MockUpstream::Impl {
    MockUpstreamOptions opts;
    net::io_context ioc;
    std::unique_ptr<net::ssl::context> ssl;
    tcp::acceptor acceptor{ioc};
    std::vector<std::thread> threads;
    std::atomic<std::size_t> accepted{0};
    std::atomic<std::size_t> open{0};
    mutable std::mutex mutex;
    std::vector<RecordedRequest> recorded;
    std::atomic<std::size_t> request_total{0};
    std::atomic<bool> stopping{false};
    std::uint16_t port = 0;
    /// Exact bytes for the next requests (then close), and whether a TLS close_notify precedes
    /// the close.
    std::deque<std::pair<std::string, bool>> raw_queue;
    std::deque<std::pair<std::string, int>> scripts;  ///< directives, remaining uses
    std::vector<std::string> cycle;
    std::size_t cycle_pos = 0;
    std::string default_directives;

    /// The scripted directives for the next request ("" = none).
    std::string next_script() {
        std::lock_guard lock(mutex);
        if (!scripts.empty()) {
            std::string d = scripts.front().first;
            if (--scripts.front().second <= 0) {
                scripts.pop_front();
            }
            return d;
        }
        if (!cycle.empty()) {
            return cycle[cycle_pos++ % cycle.size()];
        }
        return default_directives;
    }
};

namespace {

template <class Stream>
net::awaitable<bool> write_raw(Stream& s, std::string_view data) {
    auto [ec, n] = co_await net::async_write(s, net::buffer(data), nothrow);
    co_return !ec;
}

net::awaitable<void> sleep_ms(int ms) {
    if (ms <= 0) {
        co_return;
    }
    net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(ms));
    co_await t.async_wait(nothrow);
}

template <class Stream>
void hard_close(Stream& s) {
    beast::error_code ec;
    beast::get_lowest_layer(s).socket().shutdown(tcp::socket::shutdown_both, ec);
    beast::get_lowest_layer(s).socket().close(ec);
}

/// Per-connection script state.
struct ConnState {
    bool drop_next = false;  ///< close on the next request without answering
};

/// Handles one request; returns false when the connection must end.
template <class Stream>
net::awaitable<bool> handle(MockUpstream::Impl& impl, Stream& stream, http::request<http::string_body>& req,
                            ConnState& state) {
    impl.request_total.fetch_add(1);
    if (impl.opts.record) {
        RecordedRequest r;
        r.method = std::string(req.method_string());
        r.target = std::string(req.target());
        for (const auto& f : req) {
            r.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
        }
        r.body = req.body();
        r.at = std::chrono::steady_clock::now();
        std::lock_guard lock(impl.mutex);
        impl.recorded.push_back(std::move(r));
    }
    std::string raw;
    bool close_notify = false;
    {
        std::lock_guard lock(impl.mutex);
        if (!impl.raw_queue.empty()) {
            std::tie(raw, close_notify) = std::move(impl.raw_queue.front());
            impl.raw_queue.pop_front();
        }
    }
    if (!raw.empty()) {
        co_await write_raw(stream, raw);
        if constexpr (requires { stream.async_shutdown(nothrow); }) {
            if (close_notify) {
                co_await stream.async_shutdown(nothrow);  // an orderly TLS end
            }
        }
        hard_close(stream);  // without close_notify: the TCP connection just ends
        co_return false;
    }
    std::string target(req.target());
    target = target.substr(0, target.find('?'));
    if (target.rfind("/model/", 0) == 0) {
        // Bedrock's wire formats; the path stays encoded as sent, since it was signed that way.
        std::vector<std::pair<std::string, std::string>> hdrs;
        for (const auto& f : req) {
            hdrs.emplace_back(std::string(f.name_string()), std::string(f.value()));
        }
        sluice::LocalResponse b =
            bedrock_generate(std::string(req.method_string()), target, hdrs, req.body());
        if (b.status == 200 && b.content_type == "application/vnd.amazon.eventstream") {
            std::string head =
                "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\nTransfer-Encoding: "
                "chunked\r\n\r\n";
            if (!co_await write_raw(stream, head)) {
                co_return false;
            }
            for (std::size_t pos = 0; pos < b.body.size(); pos += 50) {  // frames split anywhere
                const std::string part = b.body.substr(pos, 50);
                char size[32];
                std::snprintf(size, sizeof size, "%zx\r\n", part.size());
                if (!co_await write_raw(stream, size + part + "\r\n")) {
                    co_return false;
                }
            }
            co_return co_await write_raw(stream, "0\r\n\r\n");
        }
        http::response<http::string_body> res{static_cast<http::status>(b.status), 11};
        res.set(http::field::content_type, "application/json");
        res.body() = std::move(b.body);
        res.keep_alive(true);
        res.prepare_payload();
        auto [bec, bn] = co_await http::async_write(stream, res, nothrow);
        co_return !bec;
    }
    if (target.rfind("/v1beta/", 0) == 0) {
        // Gemini's wire format.
        sluice::LocalResponse g = gemini_generate(std::string_view(target).substr(7), req.body());
        if (g.content_type == "text/event-stream") {
            std::string head =
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
            if (!co_await write_raw(stream, head)) {
                co_return false;
            }
            std::size_t pos = 0;
            while (pos < g.body.size()) {
                auto end = g.body.find("\r\n\r\n", pos);
                end = end == std::string::npos ? g.body.size() : end + 4;
                const std::string event = g.body.substr(pos, end - pos);
                pos = end;
                char size[32];
                std::snprintf(size, sizeof size, "%zx\r\n", event.size());
                if (!co_await write_raw(stream, size + event + "\r\n")) {
                    co_return false;
                }
            }
            co_return co_await write_raw(stream, "0\r\n\r\n");
        }
        http::response<http::string_body> res{static_cast<http::status>(g.status), 11};
        res.set(http::field::content_type, "application/json");
        res.body() = std::move(g.body);
        res.keep_alive(true);
        res.prepare_payload();
        auto [ec, n] = co_await http::async_write(stream, res, nothrow);
        co_return !ec;
    }
    if (target.rfind("/v1/", 0) == 0) {
        target = target.substr(3);
    } else if (target.rfind("/openai/v1/", 0) == 0) {
        target = target.substr(10);  // Azure v1 API
    } else if (target.rfind("/openai/deployments/", 0) == 0) {
        // Azure dated API: /openai/deployments/{deployment}/chat/completions?api-version=...
        const auto slash = target.find('/', 20);
        target = slash == std::string::npos ? "/" : target.substr(slash);
    }
    json directives = json::object();
    json body = json::parse(req.body(), nullptr, false);
    if (!body.is_discarded() && body.is_object() && body.contains("mock") && body["mock"].is_object()) {
        directives = body["mock"];
    }
    if (const std::string scripted = impl.next_script(); !scripted.empty()) {
        const json extra = json::parse(scripted, nullptr, false);
        if (extra.is_object()) {
            for (const auto& [k, v] : extra.items()) {
                directives[k] = v;
            }
        }
    }
    auto dint = [&](const char* k, int def) {
        return directives.contains(k) && directives[k].is_number_integer() ? directives[k].get<int>() : def;
    };
    auto dbool = [&](const char* k) {
        return directives.contains(k) && directives[k].is_boolean() && directives[k].get<bool>();
    };
    if (state.drop_next) {
        // A keep-alive connection the server has given up on: the request dies unanswered.
        hard_close(stream);
        co_return false;
    }
    state.drop_next = dbool("drop_next");
    if (dbool("hang_up")) {
        // The request was read; the connection closes without a byte of answer.
        hard_close(stream);
        co_return false;
    }
    if (dbool("black_hole")) {
        // Accept and never answer; wait until the peer gives up.
        beast::flat_buffer buf;
        http::request<http::string_body> ignored;
        beast::get_lowest_layer(stream).expires_never();
        co_await http::async_read(stream, buf, ignored, nothrow);
        co_return false;
    }
    co_await sleep_ms(dint("delay_ms", 0));
    const bool close = dbool("close");
    if (dbool("interim")) {
        // 1xx answers before the real one (E8): both must be skipped by the client.
        if (!co_await write_raw(
                stream,
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n")) {
            co_return false;
        }
    }
    if (const int redirect = dint("redirect", 0); redirect > 0) {
        const std::string res = "HTTP/1.1 " + std::to_string(redirect) +
                                " Moved\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n";
        co_await write_raw(stream, res);
        co_return true;
    }

    sluice::MockOptions gen;
    gen.models = {"mock-gpt-4o", "mock-gpt-4o-mini", "mock-embedding", "gpt-4o-mini", "other-model"};
    if (directives.contains("content") && directives["content"].is_string()) {
        gen.content = directives["content"].get<std::string>();
    }
    gen.stream_chunks = dint("chunks", 0);

    const int status = dint("status", 200);
    if (status != 200) {
        http::response<http::string_body> res{static_cast<http::status>(status), 11};
        res.set(http::field::content_type, "application/json");
        if (directives.contains("retry_after") && directives["retry_after"].is_string()) {
            res.set(http::field::retry_after, directives["retry_after"].get<std::string>());
        }
        if (directives.contains("retry_after_ms")) {
            res.set("retry-after-ms", directives["retry_after_ms"].dump());
        }
        if (directives.contains("headers") && directives["headers"].is_object()) {
            for (const auto& [name, value] : directives["headers"].items()) {
                const std::string text = value.is_string() ? std::string(value) : value.dump();
                res.set(name, text);
            }
        }
        if (directives.contains("error_body") && directives["error_body"].is_string()) {
            res.body() = directives["error_body"].get<std::string>();
        } else {
            res.body() = json{{"error",
                               {{"message", directives.value("message", "mock failure")},
                                {"type", status == 429 ? "rate_limit_error" : "server_error"},
                                {"param", nullptr},
                                {"code", directives.value("code", "mock_error")}}}}
                             .dump();
        }
        res.keep_alive(!close);
        res.prepare_payload();
        auto [ec, n] = co_await http::async_write(stream, res, nothrow);
        co_return !ec && !close;
    }

    sluice::LocalResponse out;
    if (req.method() == http::verb::get && target == "/models") {
        out = sluice::mock_models(gen);
    } else if (req.method() != http::verb::post) {
        out.status = 405;
        out.body =
            R"({"error":{"message":"method not allowed","type":"invalid_request_error","param":null,"code":null}})";
    } else if (target == "/chat/completions") {
        out = sluice::mock_generate(sluice::Endpoint::chat_completions, req.body(), gen);
    } else if (target == "/completions") {
        out = sluice::mock_generate(sluice::Endpoint::completions, req.body(), gen);
    } else if (target == "/embeddings") {
        out = sluice::mock_generate(sluice::Endpoint::embeddings, req.body(), gen);
    } else if (target == "/messages") {
        out = anthropic_generate(req.body());  // Anthropic's wire format
    } else if (target == "/messages/count_tokens") {
        const json b = json::parse(req.body(), nullptr, false);
        out.body =
            json{{"input_tokens", b.is_discarded() ? 0 : static_cast<int>(b.dump().size() / 4)}}.dump();
    } else {
        out.status = 404;
        out.body =
            R"({"error":{"message":"no such path","type":"invalid_request_error","param":null,"code":null}})";
    }
    const int cut_after = dint("cut_after", -1);
    if (out.content_type == "text/event-stream" && !dbool("json_for_stream")) {
        // Paced SSE, written as raw chunked HTTP so every event leaves in its own chunk.
        const bool eof_body = dbool("eof_body");
        std::string head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n";
        head += eof_body ? "Connection: close\r\n\r\n" : "Transfer-Encoding: chunked\r\n\r\n";
        if (!co_await write_raw(stream, head)) {
            co_return false;
        }
        if (const int long_line = dint("long_line", 0); long_line > 0) {
            // F2: one SSE line far longer than any sane event, then silence.
            const std::string line = "data: " + std::string(static_cast<std::size_t>(long_line), 'a');
            char size[32];
            std::snprintf(size, sizeof size, "%zx\r\n", line.size());
            co_await write_raw(stream, size + line + "\r\n");
            co_await sleep_ms(5000);
            co_return false;
        }
        if (const int mb = dint("data_lines_mb", 0); mb > 0) {
            // One SSE event that never ends: `mb` MiB of 1 KiB `data:` lines, no blank line.
            const std::string line = "data: " + std::string(1017, 'a') + "\n";
            std::string frame = "10000\r\n";  // 64 KiB per chunk
            for (int i = 0; i < 64; ++i) {
                frame += line;
            }
            frame += "\r\n";
            for (int i = 0; i < mb * 16; ++i) {
                if (!co_await write_raw(stream, frame)) {
                    co_return false;
                }
            }
            co_await write_raw(stream, "0\r\n\r\n");
            co_return false;
        }
        const int delay = dint("chunk_delay_ms", 0);
        std::size_t pos = 0;
        int sent = 0;
        const bool no_done = dbool("no_done");
        while (pos < out.body.size()) {
            auto end = out.body.find("\n\n", pos);
            end = end == std::string::npos ? out.body.size() : end + 2;
            std::string event = out.body.substr(pos, end - pos);
            pos = end;
            if (no_done && event.find("[DONE]") != std::string::npos) {
                continue;
            }
            if (cut_after >= 0 && sent == cut_after) {
                hard_close(stream);
                co_return false;
            }
            if (sent > 0) {
                co_await sleep_ms(delay);
            } else {
                co_await sleep_ms(dint("first_event_delay_ms", 0));  // head out, no token yet
            }
            std::string frame;
            if (eof_body) {
                frame = event;
            } else {
                char size[32];
                std::snprintf(size, sizeof size, "%zx\r\n", event.size());
                frame = size + event + "\r\n";
            }
            if (!co_await write_raw(stream, frame)) {
                co_return false;
            }
            ++sent;
        }
        if (eof_body) {
            hard_close(stream);
            co_return false;
        }
        if (!co_await write_raw(stream, "0\r\n\r\n")) {
            co_return false;
        }
        co_return !close;
    }
    if (out.content_type == "text/event-stream") {
        // json_for_stream: answer a stream request with plain JSON (a misbehaving upstream).
        json plain = json::parse(req.body());
        plain["stream"] = false;
        out = sluice::mock_generate(sluice::Endpoint::chat_completions, plain.dump(), gen);
    }
    if (cut_after >= 0) {
        // Promise the whole body, send half of it, then close (E5).
        std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                           std::to_string(out.body.size()) + "\r\n\r\n";
        co_await write_raw(stream, head + out.body.substr(0, out.body.size() / 2));
        hard_close(stream);
        co_return false;
    }
    http::response<http::string_body> res{static_cast<http::status>(out.status), 11};
    res.set(http::field::content_type, out.content_type);
    res.body() = std::move(out.body);
    res.keep_alive(!close);
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(stream, res, nothrow);
    co_return !ec && !close;
}

template <class Stream>
net::awaitable<void> serve(MockUpstream::Impl& impl, Stream& stream) {
    beast::flat_buffer buffer;
    ConnState state;
    while (!impl.stopping) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(120));
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, nothrow);
        if (ec) {
            co_return;
        }
        auto req = parser.release();
        if (!co_await handle(impl, stream, req, state)) {
            co_return;
        }
        if (!req.keep_alive()) {
            co_return;
        }
    }
}

struct OpenGuard {
    explicit OpenGuard(std::atomic<std::size_t>& c) : count(c) { count.fetch_add(1); }
    ~OpenGuard() { count.fetch_sub(1); }
    OpenGuard(const OpenGuard&) = delete;
    OpenGuard& operator=(const OpenGuard&) = delete;
    std::atomic<std::size_t>& count;
};

net::awaitable<void> connection(MockUpstream::Impl& impl, tcp::socket socket) {
    OpenGuard guard(impl.open);
    socket.set_option(tcp::no_delay(true));
    if (impl.ssl) {
        beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *impl.ssl);
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
        auto [ec] = co_await stream.async_handshake(net::ssl::stream_base::server, nothrow);
        if (ec) {
            co_return;
        }
        co_await serve(impl, stream);
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
        co_await stream.async_shutdown(nothrow);
    } else {
        beast::tcp_stream stream(std::move(socket));
        co_await serve(impl, stream);
    }
}

net::awaitable<void> accept_loop(MockUpstream::Impl& impl) {
    while (!impl.stopping) {
        auto [ec, socket] = co_await impl.acceptor.async_accept(nothrow);
        if (ec) {
            if (!impl.acceptor.is_open()) {
                co_return;
            }
            continue;
        }
        impl.accepted.fetch_add(1);
        net::co_spawn(impl.ioc, connection(impl, std::move(socket)), net::detached);
    }
}

}  // namespace

MockUpstream::MockUpstream(MockUpstreamOptions opts) : impl_(std::make_unique<Impl>()) {
    impl_->opts = std::move(opts);
    if (!impl_->opts.cert_file.empty()) {
        impl_->ssl = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
        impl_->ssl->use_certificate_chain_file(impl_->opts.cert_file);
        impl_->ssl->use_private_key_file(impl_->opts.key_file, net::ssl::context::pem);
    }
    tcp::endpoint ep(net::ip::make_address(impl_->opts.address), impl_->opts.port);
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen(1024);
    impl_->port = impl_->acceptor.local_endpoint().port();
    net::co_spawn(impl_->ioc, accept_loop(*impl_), net::detached);
    for (int i = 0; i < std::max(1, impl_->opts.threads); ++i) {
        impl_->threads.emplace_back([this] { impl_->ioc.run(); });
    }
}

MockUpstream::~MockUpstream() {
    stop();
}

void MockUpstream::stop() {
    if (impl_->stopping.exchange(true)) {
        return;
    }
    net::post(impl_->ioc, [this] {
        beast::error_code ec;
        impl_->acceptor.close(ec);
    });
    impl_->ioc.stop();
    for (auto& t : impl_->threads) {
        t.join();
    }
}

std::uint16_t MockUpstream::port() const {
    return impl_->port;
}
bool MockUpstream::tls() const {
    return impl_->ssl != nullptr;
}
std::string MockUpstream::base_url() const {
    return std::string(tls() ? "https" : "http") + "://127.0.0.1:" + std::to_string(port()) + "/v1";
}
std::size_t MockUpstream::connections() const {
    return impl_->accepted.load();
}
std::size_t MockUpstream::open_connections() const {
    return impl_->open.load();
}
std::vector<RecordedRequest> MockUpstream::requests() const {
    std::lock_guard lock(impl_->mutex);
    return impl_->recorded;
}
std::size_t MockUpstream::request_count() const {
    return impl_->request_total.load();
}
void MockUpstream::script(std::string directives, int count) {
    std::lock_guard lock(impl_->mutex);
    impl_->scripts.emplace_back(std::move(directives), count);
}

void MockUpstream::set_cycle(std::vector<std::string> cycle) {
    std::lock_guard lock(impl_->mutex);
    impl_->cycle = std::move(cycle);
    impl_->cycle_pos = 0;
}

void MockUpstream::set_default(std::string directives) {
    std::lock_guard lock(impl_->mutex);
    impl_->default_directives = std::move(directives);
}

void MockUpstream::enqueue_raw(std::string bytes, bool close_notify) {
    std::lock_guard lock(impl_->mutex);
    impl_->raw_queue.emplace_back(std::move(bytes), close_notify);
}

void MockUpstream::clear() {
    std::lock_guard lock(impl_->mutex);
    impl_->recorded.clear();
}

}  // namespace sluice::test
