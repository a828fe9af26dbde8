#pragma once

#include <chrono>
#include <memory>

#include "net/asio.hpp"

namespace sluice {

/// A lazily re-armed deadline for the operations on one socket. Moving the deadline later costs
/// no syscall (the timer fires at the old time and re-arms itself); when the deadline passes the
/// socket's pending operations are cancelled and expired() turns true. Safe to destroy with a
/// wait pending: the handler only holds the shared state.
class Deadline {
public:
    using Clock = std::chrono::steady_clock;

    Deadline(const net::any_io_executor& ex, tcp::socket* socket, tcp::resolver* resolver = nullptr);
    ~Deadline();
    Deadline(const Deadline&) = delete;
    Deadline& operator=(const Deadline&) = delete;

    /// Sets the deadline `d` from now and clears expired().
    void expires_after(Clock::duration d);
    /// Sets an absolute deadline and clears expired().
    void expires_at(Clock::time_point t);
    /// No deadline until the next expires_*.
    void clear() noexcept;
    bool expired() const noexcept { return impl_->expired; }

private:
    struct Impl {
        explicit Impl(const net::any_io_executor& ex) : timer(ex) {}
        net::steady_timer timer;
        tcp::socket* socket = nullptr;
        tcp::resolver* resolver = nullptr;
        Clock::time_point deadline = Clock::time_point::max();
        bool armed = false;
        bool expired = false;
    };
    static void arm(const std::shared_ptr<Impl>& impl);
    static void on_wait(const std::shared_ptr<Impl>& impl, const error_code& ec);

    std::shared_ptr<Impl> impl_;
};

}  // namespace sluice
