#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "upstream/connection_pool.hpp"

namespace sluice {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;

/// Asks the pool for a slot and records what it got (1 = slot, 0 = timed out).
net::awaitable<void> ask(ConnectionPool& pool, std::chrono::milliseconds timeout, std::vector<int>& got) {
    const auto a = co_await pool.acquire("k", 1, 60s, timeout);
    got.push_back(a.ok ? 1 : 0);
}

void poll_until(net::io_context& io, const std::function<bool()>& done) {
    for (int i = 0; i < 1000 && !done(); ++i) {
        io.poll();
        io.restart();
    }
}

TEST(Pool, AWaiterDestroyedWhileQueuedAtShutdownIsUnregistered) {
    std::vector<int> got;
    auto io = std::make_unique<net::io_context>();
    ConnectionPool pool(io->get_executor());
    net::co_spawn(*io, ask(pool, 60s, got), net::detached);  // takes the only slot
    for (int i = 0; i < 3; ++i) {
        net::co_spawn(*io, ask(pool, 60s, got), net::detached);
    }
    poll_until(*io, [&] { return pool.waiting_count() == 3; });
    ASSERT_EQ(got, std::vector<int>{1});
    ASSERT_EQ(pool.waiting_count(), 3u);

    // The server stops with the three still queued: their frames go with the io_context.
    io.reset();
    EXPECT_EQ(pool.waiting_count(), 0u);
    // A lease handed back afterwards wakes nobody (before the fix: a write into a freed frame,
    // which ASan reports as heap-use-after-free).
    pool.release_slot("k");
    EXPECT_EQ(got, std::vector<int>{1});
}

TEST(Pool, AReleasedSlotGoesToTheOldestWaiterAndATimedOutWaiterLeavesTheQueue) {
    std::vector<int> got;
    net::io_context io;
    ConnectionPool pool(io.get_executor());
    net::co_spawn(io, ask(pool, 60s, got), net::detached);
    net::co_spawn(io, ask(pool, 60s, got), net::detached);
    net::co_spawn(io, ask(pool, 1ms, got), net::detached);
    poll_until(io, [&] { return pool.waiting_count() == 2; });
    io.run_for(50ms);  // the 1 ms waiter times out
    EXPECT_EQ(got, (std::vector<int>{1, 0}));
    EXPECT_EQ(pool.waiting_count(), 1u);
    pool.release_slot("k");
    poll_until(io, [&] { return got.size() == 3; });
    EXPECT_EQ(got, (std::vector<int>{1, 0, 1}));
    EXPECT_EQ(pool.waiting_count(), 0u);
}

}  // namespace
}  // namespace sluice
