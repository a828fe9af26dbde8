#include "server/server.hpp"

#include <chrono>
#include <stdexcept>

#include "log/log.hpp"
#include "server/fd_limit.hpp"
#include "util/allocator.hpp"
#include "util/url.hpp"

namespace sluice {

namespace {
constexpr std::size_t kWatchBufferCap = 64 * 1024;

/// A read finished (its bytes, if any, are in link->inbuf): note an end, wake the session.
void on_client_read(const std::shared_ptr<ClientLink>& link, const error_code& ec) {
    link->read_pending = false;
    if (ec == net::error::eof) {
        link->eof = true;
    } else if (ec && ec != net::error::operation_aborted) {
        link->read_error = ec;
    }
    const bool hard_end = link->eof || link->read_error;
    if (link->busy && hard_end && (link->read_error || link->inbuf.empty())) {
        // The client left while its request is in flight: stop the provider's work now.
        link->gone = true;
        if (link->upstream != nullptr) {
            link->upstream->cancel();
        }
        if (link->retry_timer != nullptr) {
            link->retry_timer->cancel();
        }
    }
    if (link->waiting) {
        link->signal.cancel();
        return;
    }
    if (!ec && link->busy && link->inbuf.size() < kWatchBufferCap) {
        start_client_read(link);  // keep watching for a disconnect
    }
}
}  // namespace

ClientLink::ClientLink(tcp::socket s, Worker& w)
    : socket(std::move(s)), worker(w), signal(w.io()), deadline(w.io().get_executor(), &socket) {
    error_code ignored;
    socket.non_blocking(true, ignored);  // reads are "wait until readable, then read what is there"
}

namespace {

/// The client socket is readable (or failed): reads what is there through the worker thread's
/// buffer, so an idle or streaming connection holds no read buffer of its own.
void on_client_readable(const std::shared_ptr<ClientLink>& link, const error_code& ec) {
    if (ec) {
        on_client_read(link, ec);
        return;
    }
    thread_local std::array<char, 16384> buf;
    error_code rec;
    const std::size_t n = link->socket.read_some(net::buffer(buf), rec);
    if (rec == net::error::would_block || rec == net::error::try_again) {
        link->read_pending = false;  // a spurious wake-up
        start_client_read(link);
        return;
    }
    if (n > 0) {
        link->inbuf.append(buf.data(), n);
    }
    on_client_read(link, rec);
}

}  // namespace

void start_client_read(const std::shared_ptr<ClientLink>& link) {
    if (link->read_pending || link->eof || link->read_error) {
        return;
    }
    link->read_pending = true;
    link->socket.async_wait(tcp::socket::wait_read,
                            [link](const error_code& ec) { on_client_readable(link, ec); });
}

net::awaitable<void> wait_client_read(std::shared_ptr<ClientLink> link) {
    start_client_read(link);
    if (!link->read_pending) {
        co_return;
    }
    link->waiting = true;
    link->signal.expires_at(net::steady_timer::time_point::max());
    co_await link->signal.async_wait(use_nothrow);
    link->waiting = false;
}

Worker::Worker(Server& server, std::size_t index)
    : server_(server), index_(index), work_(net::make_work_guard(ioc_)), acceptor_(ioc_), sweep_timer_(ioc_) {
    pool_ = std::make_unique<ConnectionPool>(ioc_.get_executor());
    set_runtime(server_.runtime());
}

Worker::~Worker() {
    // Idle pooled sockets close while their io_context still exists; connections owned by
    // unfinished requests close when the io_context destroys those requests' frames.
    pool_->close_all();
}

void Worker::set_runtime(std::shared_ptr<const Runtime> rt) {
    // An alias owned by a holder of this worker's own: the snapshot lives while any worker's
    // holder or any request's copy does.
    auto holder = std::make_shared<const std::shared_ptr<const Runtime>>(std::move(rt));
    const Runtime* raw = holder->get();
    runtime_ = std::shared_ptr<const Runtime>(std::move(holder), raw);
}

void Worker::open_acceptor(const tcp::endpoint& ep) {
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    const int one = 1;
    ::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    acceptor_.bind(ep);
    acceptor_.listen(1024);
}

std::uint16_t Worker::local_port() const {
    return acceptor_.local_endpoint().port();
}

void Worker::start() {
    net::co_spawn(ioc_, accept_loop(), net::detached);
    net::co_spawn(ioc_, sweep_loop(), net::detached);
    server_.handler().start_worker(*this);
    thread_ = std::thread([this] { ioc_.run(); });
}

void Worker::join() {
    if (thread_.joinable()) {
        thread_.join();
    }
}

void Worker::begin_drain() {
    net::post(ioc_, [this] {
        error_code ignored;
        acceptor_.close(ignored);
        sweep_timer_.cancel();
        pool_->close_all();
        // Idle keep-alive connections (no request in progress, nothing buffered) close now.
        for (ClientLink* link : links) {
            if (!link->busy && !link->receiving && link->inbuf.empty()) {
                link->socket.cancel(ignored);
                link->socket.shutdown(tcp::socket::shutdown_both, ignored);
            }
        }
    });
}

std::size_t workers_for(const ServerConfig& sc) noexcept {
    return sc.threads > 0 ? static_cast<std::size_t>(sc.threads)
                          : std::max(1U, std::thread::hardware_concurrency());
}

net::awaitable<void> Worker::accept_loop() {
    const auto max_conns = static_cast<std::int64_t>(runtime()->config().server.max_connections);
    auto last_accept_warning = std::chrono::steady_clock::time_point{};
    bool accept_warned = false;
    while (!server_.draining()) {
        if (server_.connections.load(std::memory_order_relaxed) >= max_conns) {
            // Above the cap: stop accepting and let the backlog absorb new connections.
            co_await net::steady_timer(ioc_, std::chrono::milliseconds(10)).async_wait(use_nothrow);
            continue;
        }
        auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
                co_return;
            }
            // EMFILE and friends: the connection stays in the backlog while accept pauses
            // (instead of spinning on an error that repeats until a descriptor is freed).
            const auto now = std::chrono::steady_clock::now();
            if (!accept_warned || now - last_accept_warning >= std::chrono::seconds(10)) {
                accept_warned = true;
                last_accept_warning = now;
                log::warn(
                    "worker {}: accept failed ({}); pausing accepts (open-file limit {}, "
                    "server.max_connections {})",
                    index_, ec.message(), open_file_limit(), max_conns);
            }
            co_await net::steady_timer(ioc_, std::chrono::milliseconds(50)).async_wait(use_nothrow);
            continue;
        }
        net::co_spawn(ioc_, run_session(*this, std::move(socket)), net::detached);
    }
}

net::awaitable<void> Worker::sweep_loop() {
    while (!server_.draining()) {
        sweep_timer_.expires_after(std::chrono::seconds(1));
        auto [ec] = co_await sweep_timer_.async_wait(use_nothrow);
        if (ec || server_.draining()) {
            co_return;
        }
        // Each provider may set its own idle limit; the shortest one bounds the sweep.
        std::chrono::milliseconds max_idle{55000};
        for (const auto& pc : runtime()->config().providers) {
            max_idle = std::min(max_idle, pc.pool_idle_timeout);
        }
        pool_->sweep(max_idle);
        if (index_ == 0) {
            release_memory_after_peak();
        }
    }
}

void Worker::release_memory_after_peak() {
    // After a burst (thousands of streams ending together) the allocator keeps the freed pages;
    // give them back once connections fell to half of their peak since the last release. Rare
    // by construction: it needs a drop of at least kTrimDrop connections.
    constexpr std::int64_t kTrimDrop = 512;
    const std::int64_t now = server_.connections.load(std::memory_order_relaxed);
    peak_connections_ = std::max(peak_connections_, now);
    if (peak_connections_ - now >= kTrimDrop && now <= peak_connections_ / 2) {
        allocator::release_free_memory();
        peak_connections_ = now;
    }
}

Server::Server(std::shared_ptr<const Runtime> runtime, std::shared_ptr<const RequestHandler> handler)
    : runtime_(std::move(runtime)), handler_(std::move(handler)) {}

Server::~Server() {
    stop_now();
    wait();
}

std::shared_ptr<const Runtime> Server::runtime() const {
    std::lock_guard lock(runtime_mutex_);
    return runtime_;
}

void Server::publish(const std::shared_ptr<const Runtime>& rt) {
    {
        std::lock_guard lock(runtime_mutex_);
        runtime_ = rt;
    }
    for (auto& w : workers_) {
        Worker* worker = w.get();
        net::post(worker->io(), [worker, rt] { worker->set_runtime(rt); });
    }
}

void Server::start() {
    const auto& sc = runtime_->config().server;
    const auto hp = parse_host_port(sc.listen);
    if (!hp) {
        throw std::runtime_error("invalid listen address '" + sc.listen + "'");
    }
    error_code ec;
    const auto addr = net::ip::make_address(hp->host == "localhost" ? "127.0.0.1" : hp->host, ec);
    if (ec) {
        throw std::runtime_error("listen address '" + sc.listen + "' is not an IP address");
    }
    const std::size_t threads = workers_for(sc);
    for (std::size_t i = 0; i < threads; ++i) {
        workers_.push_back(std::make_unique<Worker>(*this, i));
    }
    tcp::endpoint ep(addr, hp->port);
    try {
        if (ep.port() != 0) {
            // SO_REUSEPORT would let a second sluice on the same port silently share traffic:
            // a plain bind first fails loudly when someone else holds the port.
            tcp::acceptor probe(workers_[0]->io());
            probe.open(ep.protocol());
            probe.set_option(tcp::acceptor::reuse_address(true));
            probe.bind(ep);
        }
        workers_[0]->open_acceptor(ep);
        // With port 0 the first acceptor picks the port; the others share it (SO_REUSEPORT).
        port_ = workers_[0]->local_port();
        ep.port(port_);
        for (std::size_t i = 1; i < workers_.size(); ++i) {
            workers_[i]->open_acceptor(ep);
        }
    } catch (const boost::system::system_error& e) {
        workers_.clear();
        throw std::runtime_error("cannot listen on " + sc.listen + ": " + e.code().message());
    }
    for (auto& w : workers_) {
        w->start();
    }
}

void Server::drain() {
    std::lock_guard lock(drain_mutex_);
    if (draining_.exchange(true) || stopped_) {
        return;
    }
    for (auto& w : workers_) {
        w->begin_drain();
    }
    drain_thread_ = std::thread([this] { drain_watch(); });
}

void Server::drain_watch() {
    using namespace std::chrono;
    const auto timeout = runtime()->config().server.drain_timeout;
    const auto until = steady_clock::now() + timeout;
    log::info("draining: waiting up to {} ms for {} in-flight request(s)", timeout.count(),
              active_requests.load());
    while (active_requests.load() > 0 && steady_clock::now() < until && !stopped_) {
        std::this_thread::sleep_for(milliseconds(10));
    }
    if (active_requests.load() > 0 && !stopped_) {
        // Deadline: streams still open end with a terminal error event, then sluice stops.
        log::warn("drain timeout: ending {} request(s) still in flight", active_requests.load());
        for (auto& w : workers_) {
            Worker* worker = w.get();
            net::post(worker->io(), [worker] {
                for (ClientLink* link : worker->links) {
                    link->drain_abort = true;
                    if (link->upstream != nullptr) {
                        link->upstream->cancel();
                    }
                    if (link->retry_timer != nullptr) {
                        link->retry_timer->cancel();
                    }
                }
            });
        }
        // A stream blocked on a slow reader sends its terminal event once its pending write
        // completes: give that write up to write_timeout, at most 5 s.
        const auto grace = steady_clock::now() + std::min<steady_clock::duration>(
                                                     runtime()->config().server.write_timeout, seconds(5));
        while (active_requests.load() > 0 && steady_clock::now() < grace && !stopped_) {
            std::this_thread::sleep_for(milliseconds(10));
        }
    }
    log::info("drained; stopping");
    stopped_ = true;
    for (auto& w : workers_) {
        w->stop();
    }
}

void Server::stop_now() {
    stopped_ = true;
    for (auto& w : workers_) {
        w->stop();
    }
}

void Server::wait() {
    for (auto& w : workers_) {
        w->join();
    }
    std::lock_guard lock(drain_mutex_);
    if (drain_thread_.joinable()) {
        drain_thread_.join();
    }
}

std::uint64_t Server::upstream_connections_opened() const {
    std::uint64_t n = 0;
    for (const auto& w : workers_) {
        n += w->opened_total.load(std::memory_order_relaxed);
    }
    return n;
}

}  // namespace sluice
