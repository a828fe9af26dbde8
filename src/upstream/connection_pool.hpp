#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "net/asio.hpp"
#include "net/deadline.hpp"

namespace sluice {

/// Everything that makes two upstream connections interchangeable (cf. Pingora's HttpPeer hash):
/// scheme, host, port, SNI and the TLS context (CA set and verification settings).
struct PoolKey {
    bool tls = false;
    std::string host;
    std::uint16_t port = 0;
    const net::ssl::context* tls_context = nullptr;
    std::string id() const;
};

/// One connection to a provider, plain TCP or TLS. Owned by exactly one request while in use, by
/// the worker's pool while idle.
class UpstreamConnection {
public:
    UpstreamConnection(const net::any_io_executor& ex, PoolKey key, net::ssl::context* tls);
    ~UpstreamConnection();

    /// Resolves (asynchronously), connects and, for https, handshakes with SNI and hostname
    /// verification. The deadline covers all three. Returns the error code and a short stage
    /// name ("dns", "connect", "tls") for error messages.
    net::awaitable<std::pair<error_code, const char*>> connect(std::chrono::milliseconds timeout);

    net::awaitable<std::tuple<error_code, std::size_t>> write(const std::string& head,
                                                              const std::string& body);
    /// Reads what the peer sent (at least one byte, or an error) and appends it to `out`.
    net::awaitable<std::tuple<error_code, std::size_t>> read_into(std::string& out);

    /// Cancels whatever is pending (DNS, connect, I/O); used when the client goes away.
    void cancel() noexcept;
    /// Best-effort check that an idle connection was not closed by the peer (no pending bytes,
    /// no EOF) before it is reused.
    bool looks_alive() noexcept;

    const PoolKey& key() const noexcept { return key_; }
    const std::string& key_id() const noexcept { return key_id_; }
    tcp::socket& socket() noexcept;
    Deadline& deadline() noexcept { return *deadline_; }
    bool reused() const noexcept { return uses_ > 0; }
    std::uint64_t uses() const noexcept { return uses_; }
    void mark_used() noexcept { ++uses_; }
    std::chrono::steady_clock::time_point idle_since{};
    /// Bytes read from the peer and not yet consumed.
    std::string inbuf;
    static constexpr std::size_t kReadBufferSize = 16384;

private:
    PoolKey key_;
    std::string key_id_;
    net::ssl::context* tls_ctx_;
    std::optional<tcp::socket> plain_;
    std::optional<net::ssl::stream<tcp::socket>> tls_;
    tcp::resolver resolver_;
    std::unique_ptr<Deadline> deadline_;
    std::uint64_t uses_ = 0;
    std::unique_ptr<char[]> tls_buffer_;  ///< TLS reads land here (allocated at the first one)
    /// The socket is most likely empty (a request was just written, or the last read took less
    /// than the buffer): the next read waits for readiness first instead of trying a read that
    /// would only say EAGAIN (as nginx does after a short read).
    bool drained_ = true;
};

/// Per-worker connection pool: single-threaded by construction (lives on its worker's
/// io_context), so no locks. Bounds live connections per key (idle + in use), reuses idle
/// keep-alive connections younger than their idle limit, closes idle ones that time out.
class ConnectionPool {
public:
    explicit ConnectionPool(const net::any_io_executor& ex) : ex_(ex) {}

    struct Acquired {
        bool ok = false;                           ///< false: no slot freed within the timeout
        std::unique_ptr<UpstreamConnection> idle;  ///< a reusable connection, or null = open one
    };
    /// An idle connection still believed alive (younger than `max_idle`), else a slot to open a
    /// new one under `max_connections`, waiting up to `timeout` for either.
    net::awaitable<Acquired> acquire(const std::string& key_id, std::size_t max_connections,
                                     std::chrono::milliseconds max_idle, std::chrono::milliseconds timeout);
    /// A pooled connection still believed alive, or nullptr.
    std::unique_ptr<UpstreamConnection> take_idle(const std::string& key_id,
                                                  std::chrono::milliseconds max_idle);
    /// Gives back a slot (the connection was closed or never opened).
    void release_slot(const std::string& key_id);
    /// Returns a connection after a complete keep-alive exchange; it keeps its slot.
    void put_idle(std::unique_ptr<UpstreamConnection> conn);
    /// Closes idle connections older than `max_idle`; called periodically by the worker.
    void sweep(std::chrono::milliseconds max_idle);
    /// Closes every idle connection (drain).
    void close_all();

    std::size_t idle_count() const noexcept;
    /// Coroutines queued in acquire() for a slot, over every key.
    std::size_t waiting_count() const noexcept;
    std::uint64_t connections_opened() const noexcept { return opened_; }
    void note_opened() noexcept { ++opened_; }
    const net::any_io_executor& executor() const noexcept { return ex_; }

private:
    /// A coroutine queued in acquire(). It registers itself on construction and, unless a
    /// wake-up already took it off the queue, unregisters on destruction: a frame destroyed while
    /// suspended (its io_context torn down at shutdown) leaves no dangling pointer behind for the
    /// next release_slot to wake.
    struct Waiter {
        Waiter(const net::any_io_executor& ex, std::list<Waiter*>& queue);
        ~Waiter();
        Waiter(const Waiter&) = delete;
        Waiter& operator=(const Waiter&) = delete;
        net::steady_timer timer;
        std::list<Waiter*>* queue;
        std::list<Waiter*>::iterator pos;
        bool woken = false;
    };
    struct Group {
        std::deque<std::unique_ptr<UpstreamConnection>> idle;  ///< most recently used at back
        std::size_t live = 0;
        std::list<Waiter*> waiters;
    };
    void wake_one(Group& g);

    net::any_io_executor ex_;
    std::unordered_map<std::string, Group> groups_;
    std::uint64_t opened_ = 0;
};

}  // namespace sluice
