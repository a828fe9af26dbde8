#include "http_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>

namespace sluice::test {

namespace http = boost::beast::http;
namespace net = boost::asio;

std::string HttpResponse::header(const std::string& name) const {
    const auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
}

Client::Client(std::uint16_t port, std::chrono::milliseconds timeout) : socket_(io_) {
    socket_.connect({net::ip::make_address("127.0.0.1"), port});
    timeval tv{};
    tv.tv_sec = static_cast<long>(timeout.count() / 1000);
    tv.tv_usec = static_cast<long>((timeout.count() % 1000) * 1000);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

Client::~Client() {
    close();
}

void Client::close() {
    boost::system::error_code ec;
    socket_.close(ec);
}

HttpResponse Client::request(const std::string& method, const std::string& target, const std::string& body,
                             const std::vector<std::pair<std::string, std::string>>& headers) {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) {
        req.set(k, v);
    }
    req.body() = body;
    if (!body.empty() || method == "POST") {
        req.prepare_payload();
    }
    http::write(socket_, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    http::read(socket_, buffer_, parser);
    HttpResponse out;
    const auto& res = parser.get();
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
        std::string name(f.name_string());
        for (auto& c : name) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        out.headers[name] = std::string(f.value());
    }
    out.body = res.body();
    out.keep_alive = res.keep_alive();
    return out;
}

HttpResponse Client::post_json(const std::string& target, const std::string& body,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
    auto h = headers;
    h.emplace_back("Content-Type", "application/json");
    return request("POST", target, body, h);
}

void Client::send_raw(const std::string& bytes) {
    net::write(socket_, net::buffer(bytes));
}

std::string Client::read_until(const std::string& until, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    std::string out = boost::beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    char buf[8192];
    last_read_error_.clear();
    while (out.find(until) == std::string::npos && std::chrono::steady_clock::now() < end) {
        // Wait for data at most until the deadline (a blocking read would ignore it).
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
        pollfd pfd{socket_.native_handle(), POLLIN, 0};
        if (::poll(&pfd, 1, static_cast<int>(std::max<long>(1, left.count()))) == 0) {
            continue;
        }
        boost::system::error_code ec;
        const auto n = socket_.read_some(net::buffer(buf), ec);
        if (n > 0) {
            out.append(buf, n);
        }
        if (ec && ec != net::error::would_block && ec != net::error::try_again) {
            last_read_error_ = ec.message();
            break;
        }
    }
    return out;
}

std::string Client::read_all(std::chrono::milliseconds timeout) {
    return read_until(std::string("\x01\x02never\x03", 8), timeout);
}

bool Client::closed_by_peer(std::chrono::milliseconds wait) {
    const auto end = std::chrono::steady_clock::now() + wait;
    char buf[4096];
    while (std::chrono::steady_clock::now() < end) {
        boost::system::error_code ec;
        socket_.read_some(net::buffer(buf), ec);
        if (ec == net::error::eof || ec == net::error::connection_reset) {
            return true;
        }
        if (ec && ec != net::error::would_block && ec != net::error::try_again) {
            return ec != net::error::timed_out;
        }
    }
    return false;
}

std::vector<std::string> sse_data(const std::string& body) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while ((pos = body.find("data: ", pos)) != std::string::npos) {
        const auto end = body.find('\n', pos);
        out.push_back(body.substr(pos + 6, end - pos - 6));
        pos = end;
    }
    return out;
}

std::string dechunk(const std::string& raw, bool& complete) {
    complete = false;
    auto pos = raw.find("\r\n\r\n");
    if (pos == std::string::npos) {
        return {};
    }
    pos += 4;
    std::string body;
    while (pos < raw.size()) {
        const auto eol = raw.find("\r\n", pos);
        if (eol == std::string::npos) {
            break;
        }
        const auto size = std::stoul(raw.substr(pos, eol - pos), nullptr, 16);
        if (size == 0) {
            complete = raw.compare(eol, 4, "\r\n\r\n") == 0;
            break;
        }
        body += raw.substr(eol + 2, size);
        pos = eol + 2 + size + 2;
    }
    return body;
}

}  // namespace sluice::test
