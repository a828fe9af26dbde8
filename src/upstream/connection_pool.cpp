#include "upstream/connection_pool.hpp"

#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>

namespace sluice {

std::string PoolKey::id() const {
    std::string id = tls ? "https://" : "http://";
    id += host;
    id += ':';
    id += std::to_string(port);
    if (tls) {
        id += '#';
        id += std::to_string(reinterpret_cast<std::uintptr_t>(tls_context));
    }
    return id;
}

UpstreamConnection::UpstreamConnection(const net::any_io_executor& ex, PoolKey key, net::ssl::context* tls)
    : key_(std::move(key)), key_id_(key_.id()), tls_ctx_(tls), resolver_(ex) {
    if (key_.tls && tls_ctx_ != nullptr) {
        tls_.emplace(ex, *tls_ctx_);
    } else {
        plain_.emplace(ex);
    }
    deadline_ = std::make_unique<Deadline>(ex, &socket(), &resolver_);
}

UpstreamConnection::~UpstreamConnection() {
    error_code ignored;
    socket().close(ignored);
}

tcp::socket& UpstreamConnection::socket() noexcept {
    return tls_ ? tls_->next_layer() : *plain_;
}

void UpstreamConnection::cancel() noexcept {
    resolver_.cancel();
    error_code ignored;
    socket().cancel(ignored);
}

bool UpstreamConnection::looks_alive() noexcept {
    if (!socket().is_open() || !inbuf.empty()) {
        return false;
    }
    char probe = 0;
    const auto n = ::recv(socket().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    // 0 = orderly close; >0 = unexpected bytes (or a TLS close_notify): either way not reusable.
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

net::awaitable<std::pair<error_code, const char*>> UpstreamConnection::connect(
    std::chrono::milliseconds timeout) {
    deadline_->expires_after(timeout);
    // The deadline cancels the resolver too, so a DNS stall is bounded by the connect timeout.
    auto [rec, results] = co_await resolver_.async_resolve(key_.host, std::to_string(key_.port), use_nothrow);
    if (rec) {
        co_return std::make_pair(deadline_->expired() ? net::error::timed_out : rec, "dns");
    }
    auto [cec, ep] = co_await net::async_connect(socket(), results, use_nothrow);
    if (cec) {
        co_return std::make_pair(deadline_->expired() ? net::error::timed_out : cec, "connect");
    }
    error_code ignored;
    socket().set_option(tcp::no_delay(true), ignored);
    if (!tls_) {
        plain_->non_blocking(true, ignored);  // read_into() reads what is there, then waits
    }
    if (tls_) {
        // SNI, then verify the certificate chain and the host name.
        if (SSL_set_tlsext_host_name(tls_->native_handle(), key_.host.c_str()) != 1) {
            co_return std::make_pair(
                error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category()), "tls");
        }
        tls_->set_verify_callback(net::ssl::host_name_verification(key_.host));
        auto [hec] = co_await tls_->async_handshake(net::ssl::stream_base::client, use_nothrow);
        if (hec) {
            co_return std::make_pair(deadline_->expired() ? net::error::timed_out : hec, "tls");
        }
    }
    deadline_->clear();
    co_return std::make_pair(error_code{}, "");
}

net::awaitable<std::tuple<error_code, std::size_t>> UpstreamConnection::write(const std::string& head,
                                                                              const std::string& body) {
    const std::array<net::const_buffer, 2> buffers{net::buffer(head), net::buffer(body)};
    drained_ = true;  // the answer cannot be there before the request
    if (tls_) {
        co_return co_await net::async_write(*tls_, buffers, use_nothrow);
    }
    co_return co_await net::async_write(*plain_, buffers, use_nothrow);
}

net::awaitable<std::tuple<error_code, std::size_t>> UpstreamConnection::read_into(std::string& out) {
    if (tls_) {
        if (!tls_buffer_) {
            tls_buffer_ = std::make_unique<char[]>(kReadBufferSize);
        }
        auto [ec, n] =
            co_await tls_->async_read_some(net::buffer(tls_buffer_.get(), kReadBufferSize), use_nothrow);
        out.append(tls_buffer_.get(), n);
        co_return std::make_tuple(ec, n);
    }
    // Plain TCP: wait until readable, then read what is there through the worker thread's
    // buffer, so a connection holds no read buffer of its own while it waits (a slow stream, an
    // idle pooled connection).
    thread_local std::array<char, kReadBufferSize> buf;
    while (true) {
        if (drained_) {
            // A readiness wait that finds the data already there completes at once.
            auto [wec] = co_await plain_->async_wait(tcp::socket::wait_read, use_nothrow);
            if (wec) {
                co_return std::make_tuple(wec, std::size_t{0});
            }
        }
        error_code ec;
        const std::size_t n = plain_->read_some(net::buffer(buf), ec);
        if (ec != net::error::would_block && ec != net::error::try_again) {
            drained_ = n < buf.size();
            out.append(buf.data(), n);
            co_return std::make_tuple(ec, n);
        }
        drained_ = true;
    }
}

std::unique_ptr<UpstreamConnection> ConnectionPool::take_idle(const std::string& key_id,
                                                              std::chrono::milliseconds max_idle) {
    const auto it = groups_.find(key_id);
    if (it == groups_.end()) {
        return nullptr;
    }
    Group& g = it->second;
    const auto now = std::chrono::steady_clock::now();
    while (!g.idle.empty()) {
        auto conn = std::move(g.idle.back());
        g.idle.pop_back();
        if (now - conn->idle_since < max_idle && conn->looks_alive()) {
            return conn;
        }
        --g.live;  // stale: closed by the destructor, its slot freed
        wake_one(g);
    }
    return nullptr;
}

net::awaitable<ConnectionPool::Acquired> ConnectionPool::acquire(const std::string& key_id,
                                                                 std::size_t max_connections,
                                                                 std::chrono::milliseconds max_idle,
                                                                 std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (true) {
        Acquired a;
        a.idle = take_idle(key_id, max_idle);
        if (a.idle) {
            a.ok = true;
            co_return a;
        }
        Group& g = groups_[key_id];
        if (g.live < max_connections) {
            ++g.live;
            a.ok = true;
            co_return a;
        }
        if (std::chrono::steady_clock::now() >= until) {
            co_return a;
        }
        // Wait for a release or an idle connection (woken by release_slot/put_idle/sweep).
        Waiter w(ex_, g.waiters);
        w.timer.expires_at(until);
        co_await w.timer.async_wait(use_nothrow);
        if (!w.woken) {
            co_return a;  // timed out; ~Waiter takes it off the queue
        }
    }
}

ConnectionPool::Waiter::Waiter(const net::any_io_executor& ex, std::list<Waiter*>& q)
    : timer(ex), queue(&q), pos(q.insert(q.end(), this)) {}

ConnectionPool::Waiter::~Waiter() {
    if (!woken) {
        queue->erase(pos);
    }
}

void ConnectionPool::wake_one(Group& g) {
    if (g.waiters.empty()) {
        return;
    }
    Waiter* w = g.waiters.front();
    g.waiters.pop_front();
    w->woken = true;
    w->timer.cancel();
}

void ConnectionPool::release_slot(const std::string& key_id) {
    const auto it = groups_.find(key_id);
    if (it == groups_.end()) {
        return;
    }
    if (it->second.live > 0) {
        --it->second.live;
    }
    wake_one(it->second);
}

void ConnectionPool::put_idle(std::unique_ptr<UpstreamConnection> conn) {
    Group& g = groups_[conn->key_id()];
    conn->idle_since = std::chrono::steady_clock::now();
    conn->deadline().clear();
    g.idle.push_back(std::move(conn));
    // A waiter can take this connection through take_idle on its next loop.
    wake_one(g);
}

void ConnectionPool::sweep(std::chrono::milliseconds max_idle) {
    const auto now = std::chrono::steady_clock::now();
    for (auto& [id, g] : groups_) {
        while (!g.idle.empty() && now - g.idle.front()->idle_since >= max_idle) {
            g.idle.pop_front();
            --g.live;
            wake_one(g);
        }
    }
}

void ConnectionPool::close_all() {
    for (auto& [id, g] : groups_) {
        g.live -= std::min(g.live, g.idle.size());
        g.idle.clear();
    }
}

std::size_t ConnectionPool::waiting_count() const noexcept {
    std::size_t n = 0;
    for (const auto& [id, g] : groups_) {
        n += g.waiters.size();
    }
    return n;
}

std::size_t ConnectionPool::idle_count() const noexcept {
    std::size_t n = 0;
    for (const auto& [id, g] : groups_) {
        n += g.idle.size();
    }
    return n;
}

}  // namespace sluice
