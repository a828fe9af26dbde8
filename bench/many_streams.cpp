// sluice-many-streams: the many-streams case of `make bench`. Two roles, each one thread:
//
//   upstream --port P [--events 20] [--interval-ms 1000]
//       answers every POST with a chunked OpenAI chat stream of one event per interval, then the
//       finish event and [DONE] (a slow provider with thousands of streams open at once);
//   clients --port P --path /v1/chat/completions [--streams 8000] [--events 20] [--ramp-ms 2000]
//           [--auth KEY]
//       opens that many connections (spread over the ramp), asks each for a stream, reads each to
//       its end and prints how many completed with every event.
//
// It speaks just enough HTTP/1.1 for this; it is a load tool, not a test of HTTP.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <boost/asio.hpp>

namespace net = boost::asio;
using net::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

namespace {

struct Options {
    std::string role;
    unsigned short port = 0;
    std::string path = "/v1/chat/completions";
    std::string auth = "sluice-bench-key";
    int streams = 8000;
    int events = 20;
    int interval_ms = 1000;
    int ramp_ms = 2000;
};

const char* kEvent =
    "data: {\"id\":\"chatcmpl-many\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"mock-gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok \"},"
    "\"finish_reason\":null}]}\n\n";
const char* kFinish =
    "data: {\"id\":\"chatcmpl-many\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
    "\"model\":\"mock-gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: [DONE]\n\n";

std::string chunk(std::string_view payload) {
    char size[16];
    std::snprintf(size, sizeof size, "%zx\r\n", payload.size());
    std::string out(size);
    out += payload;
    out += "\r\n";
    return out;
}

/// Reads one request (head and Content-Length body) into `buf`; false at EOF or on an error.
net::awaitable<bool> read_request(tcp::socket& s, std::string& buf) {
    while (true) {
        const auto head_end = buf.find("\r\n\r\n");
        if (head_end != std::string::npos) {
            std::size_t length = 0;
            const auto cl = buf.find("ontent-Length: ");
            const auto cl2 = buf.find("ontent-length: ");
            const auto at = cl != std::string::npos && cl < head_end ? cl : cl2;
            if (at != std::string::npos && at < head_end) {
                length = std::strtoul(buf.c_str() + at + 15, nullptr, 10);
            }
            if (buf.size() >= head_end + 4 + length) {
                buf.erase(0, head_end + 4 + length);
                co_return true;
            }
        }
        char data[16384];
        auto [ec, n] = co_await s.async_read_some(net::buffer(data), use_nothrow);
        if (ec) {
            co_return false;
        }
        buf.append(data, n);
    }
}

net::awaitable<void> serve_stream(tcp::socket s, Options o) {
    std::string buf;
    net::steady_timer timer(s.get_executor());
    while (co_await read_request(s, buf)) {
        std::string head =
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
        auto [ec, n] = co_await net::async_write(s, net::buffer(head), use_nothrow);
        for (int i = 0; i < o.events && !ec; ++i) {
            timer.expires_after(std::chrono::milliseconds(o.interval_ms));
            co_await timer.async_wait(use_nothrow);
            const std::string event = chunk(kEvent);
            std::tie(ec, n) = co_await net::async_write(s, net::buffer(event), use_nothrow);
        }
        if (ec) {
            co_return;
        }
        const std::string tail = chunk(kFinish) + "0\r\n\r\n";
        std::tie(ec, n) = co_await net::async_write(s, net::buffer(tail), use_nothrow);
        if (ec) {
            co_return;
        }
    }
}

net::awaitable<void> accept_loop(tcp::acceptor& a, Options o) {
    while (true) {
        auto [ec, s] = co_await a.async_accept(use_nothrow);
        if (ec) {
            continue;  // e.g. out of file descriptors for a moment
        }
        net::co_spawn(a.get_executor(), serve_stream(std::move(s), o), net::detached);
    }
}

struct Tally {
    int completed = 0;
    int short_streams = 0;  ///< ended, but with events missing
    int failed = 0;         ///< no connection, an error status, or cut
    double slowest_s = 0;
};

net::awaitable<void> one_stream(Options o, int delay_ms, Tally* tally) {
    Tally& t = *tally;  // main()'s, alive until io.run() returns
    auto ex = co_await net::this_coro::executor;
    net::steady_timer timer(ex);
    timer.expires_after(std::chrono::milliseconds(delay_ms));
    co_await timer.async_wait(use_nothrow);
    const auto began = std::chrono::steady_clock::now();
    tcp::socket s(ex);
    const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), o.port);
    auto [ec] = co_await s.async_connect(ep, use_nothrow);
    if (ec) {
        ++t.failed;
        co_return;
    }
    const std::string body =
        "{\"model\":\"many\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    const std::string req = "POST " + o.path +
                            " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            "Authorization: Bearer " +
                            o.auth + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    std::size_t n = 0;
    std::tie(ec, n) = co_await net::async_write(s, net::buffer(req), use_nothrow);
    std::string got;
    char data[4096];
    while (!ec && got.find("data: [DONE]") == std::string::npos) {
        std::tie(ec, n) = co_await s.async_read_some(net::buffer(data), use_nothrow);
        got.append(data, n);
        if (got.size() > (1U << 20)) {
            break;
        }
    }
    int events = 0;
    for (std::size_t at = got.find("\"content\":\"tok "); at != std::string::npos;
         at = got.find("\"content\":\"tok ", at + 1)) {
        ++events;
    }
    const bool ok = got.rfind("HTTP/1.1 200", 0) == 0 && got.find("data: [DONE]") != std::string::npos;
    if (ok && events == o.events) {
        ++t.completed;
    } else if (ok) {
        ++t.short_streams;
    } else {
        ++t.failed;
    }
    const double s_taken = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    t.slowest_s = std::max(t.slowest_s, s_taken);
}

bool parse(int argc, char** argv, Options& o) {
    if (argc < 2) {
        return false;
    }
    o.role = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        const std::string_view k = argv[i];
        const char* v = argv[i + 1];
        if (k == "--port") {
            o.port = static_cast<unsigned short>(std::atoi(v));
        } else if (k == "--path") {
            o.path = v;
        } else if (k == "--auth") {
            o.auth = v;
        } else if (k == "--streams") {
            o.streams = std::atoi(v);
        } else if (k == "--events") {
            o.events = std::atoi(v);
        } else if (k == "--interval-ms") {
            o.interval_ms = std::atoi(v);
        } else if (k == "--ramp-ms") {
            o.ramp_ms = std::atoi(v);
        } else {
            return false;
        }
    }
    return (o.role == "upstream" || o.role == "clients") && o.port != 0;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse(argc, argv, o)) {
        std::fprintf(stderr,
                     "usage: sluice-many-streams upstream --port P [--events N] [--interval-ms MS]\n"
                     "       sluice-many-streams clients --port P [--path P] [--streams N] [--events N] "
                     "[--ramp-ms MS] [--auth KEY]\n");
        return 2;
    }
    net::io_context io(1);
    if (o.role == "upstream") {
        tcp::acceptor a(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), o.port));
        net::co_spawn(io, accept_loop(a, o), net::detached);
        io.run();
        return 0;
    }
    Tally t;
    for (int i = 0; i < o.streams; ++i) {
        const int delay =
            o.streams > 1 ? static_cast<int>(static_cast<long long>(o.ramp_ms) * i / o.streams) : 0;
        net::co_spawn(io, one_stream(o, delay, &t), net::detached);
    }
    io.run();
    std::printf("streams=%d completed=%d short=%d failed=%d slowest_s=%.1f\n", o.streams, t.completed,
                t.short_streams, t.failed, t.slowest_s);
    return t.completed == o.streams ? 0 : 1;
}
