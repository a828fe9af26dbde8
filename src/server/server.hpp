#pragma once

#include <array>
#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "net/asio.hpp"
#include "net/deadline.hpp"
#include "runtime/runtime.hpp"
#include "server/request_handler.hpp"
#include "upstream/connection_pool.hpp"

namespace sluice {

class Server;
class Worker;

/// The downstream side of one client connection, shared between the session coroutine and its
/// background read. sluice keeps one read pending on the client socket while it talks to the
/// provider: bytes that arrive (pipelined requests) are kept, and an EOF or reset means the
/// client left, which cancels the upstream exchange at once (cancel-on-disconnect).
struct ClientLink {
    ClientLink(tcp::socket s, Worker& w);

    tcp::socket socket;
    Worker& worker;
    std::string inbuf;  ///< received bytes not parsed yet (reads go through a per-thread buffer)
    bool read_pending = false;
    bool eof = false;       ///< peer closed its sending side
    error_code read_error;  ///< last hard read error
    bool waiting = false;   ///< the session waits on `signal`
    net::steady_timer signal;
    bool busy = false;                         ///< a request is being processed
    bool receiving = false;                    ///< a request head arrived; its body is being read
    bool gone = false;                         ///< the client left while a request was in flight
    bool drain_abort = false;                  ///< the drain deadline passed: end the request now
    bool close = false;                        ///< the connection closes after the current answer
    UpstreamConnection* upstream = nullptr;    ///< cancelled when the client leaves
    net::steady_timer* retry_timer = nullptr;  ///< a wait between attempts; cancelled likewise
    Deadline deadline;
    ConnectionMemo memo;  ///< what filters remember between this connection's requests
    std::list<ClientLink*>::iterator registry_pos;
};

/// Starts a read into link->inbuf if none is pending.
void start_client_read(const std::shared_ptr<ClientLink>& link);
/// Waits until the pending read completes (starting one if needed).
net::awaitable<void> wait_client_read(std::shared_ptr<ClientLink> link);

/// One thread with its own io_context, acceptor (SO_REUSEPORT) and upstream connection pool.
/// Workers share nothing but the runtime snapshot and the server's counters.
class Worker {
public:
    Worker(Server& server, std::size_t index);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    net::io_context& io() noexcept { return ioc_; }
    ConnectionPool& pool() noexcept { return *pool_; }
    Server& server() noexcept { return server_; }
    std::size_t index() const noexcept { return index_; }
    /// The runtime snapshot this worker serves with; worker thread only (or before start()).
    /// No lock: the copy a request takes increments a control block of this worker's own, so
    /// workers never contend on one reference count.
    std::shared_ptr<const Runtime> runtime() const { return runtime_; }
    /// Replaces the snapshot; requests already running keep the one they took. Worker thread
    /// only (Server::publish posts it).
    void set_runtime(std::shared_ptr<const Runtime> rt);

    void open_acceptor(const tcp::endpoint& ep);
    std::uint16_t local_port() const;
    void start();
    void join();
    /// Posted to the worker on drain: stop accepting, close idle connections.
    void begin_drain();
    void stop() { ioc_.stop(); }

    std::list<ClientLink*> links;  ///< live client connections (worker thread only)
    /// Upstream connections this worker opened (read by other threads for tests and metrics).
    std::atomic<std::uint64_t> opened_total{0};

private:
    net::awaitable<void> accept_loop();
    net::awaitable<void> sweep_loop();
    /// Worker 0, once a second: returns freed memory to the system after a large drop in
    /// connections (allocator::release_free_memory).
    void release_memory_after_peak();
    std::int64_t peak_connections_ = 0;

    Server& server_;
    std::size_t index_;
    std::shared_ptr<const Runtime> runtime_;
    // Declared before the io_context: coroutine frames still pending when the worker stops are
    // destroyed with the io_context, and their Leases give slots back to this pool.
    std::unique_ptr<ConnectionPool> pool_;
    // One thread runs this io_context and every socket and timer on it is used only from that
    // thread (other threads reach a worker by net::post, which stays locked): the reactor's
    // per-descriptor locks are switched off (docs/ARCHITECTURE.md, "One thread per reactor").
    net::io_context ioc_{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    net::executor_work_guard<net::io_context::executor_type> work_;
    tcp::acceptor acceptor_;
    net::steady_timer sweep_timer_;
    std::thread thread_;
};

/// Workers the server runs for `sc.threads` (0 = one per core).
std::size_t workers_for(const ServerConfig& sc) noexcept;

/// The HTTP server: binds the listen address (one SO_REUSEPORT acceptor per worker), runs the
/// workers, and drains gracefully: stop accepting, /readyz 503, in-flight requests finish until
/// drain_timeout, then stop.
class Server {
public:
    /// `handler` answers the requests (the proxy); shared by every worker, hence const.
    Server(std::shared_ptr<const Runtime> runtime, std::shared_ptr<const RequestHandler> handler);
    ~Server();

    /// Binds and starts the worker threads. Throws std::runtime_error when the bind fails.
    void start();
    std::uint16_t port() const noexcept { return port_; }
    std::size_t worker_count() const noexcept { return workers_.size(); }

    /// Begins a graceful drain (thread-safe). Returns immediately.
    void drain();
    /// Stops at once (second signal).
    void stop_now();
    /// Blocks until the workers have stopped (after drain completes or stop_now).
    void wait();

    bool draining() const noexcept { return draining_.load(std::memory_order_relaxed); }
    const RequestHandler& handler() const noexcept { return *handler_; }
    bool stopped() const noexcept { return stopped_.load(); }
    /// The newest published snapshot, for code off the workers (start-up, drain). Requests read
    /// their worker's copy instead (Worker::runtime), which takes no lock.
    std::shared_ptr<const Runtime> runtime() const;
    /// Makes `rt` the snapshot for every request that starts from now on: each worker takes it
    /// on its own thread (a posted message); requests and streams in flight finish on theirs.
    /// This is what config reload swaps.
    void publish(const std::shared_ptr<const Runtime>& rt);

    std::atomic<std::int64_t> active_requests{0};
    std::atomic<std::int64_t> connections{0};
    /// Requests that reached the session's last-resort handler (an exception on the data
    /// plane: a bug). No input in the tests may raise it.
    std::atomic<std::uint64_t> unexpected_errors{0};
    /// Upstream connections opened so far, over all workers (tests and metrics).
    std::uint64_t upstream_connections_opened() const;

private:
    void drain_watch();

    std::shared_ptr<const Runtime> runtime_;
    std::shared_ptr<const RequestHandler> handler_;
    mutable std::mutex runtime_mutex_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::uint16_t port_ = 0;
    std::atomic<bool> draining_{false};
    std::atomic<bool> stopped_{false};
    std::thread drain_thread_;
    std::mutex drain_mutex_;
};

/// The session coroutine for one accepted client connection.
net::awaitable<void> run_session(Worker& worker, tcp::socket socket);

}  // namespace sluice
