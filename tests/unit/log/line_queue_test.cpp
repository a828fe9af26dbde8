#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include "log/line_queue.hpp"

namespace sluice::log {
namespace {

using namespace std::chrono_literals;

/// Reads `fd` until `until` appears or `timeout` passes.
std::string read_until(int fd, const std::string& until, std::chrono::milliseconds timeout) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[8192];
    while (got.find(until) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd pfd{fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

TEST(LineQueue, ABlockedOutputNeverBlocksAPushAndTheDropCountIsWrittenOnceItDrains) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    fcntl(fds[1], F_SETPIPE_SZ, 4096);
    {
        LineQueue::Options opts;
        opts.fd = fds[1];
        opts.max_lines = 16;
        LineQueue q(opts, [](std::uint64_t lost) { return "dropped " + std::to_string(lost); });
        const std::string line(200, 'x');
        int accepted = 0;
        for (int i = 0; i < 20000; ++i) {  // 4 MB into a 4 KiB pipe nobody reads
            accepted += q.push(line) ? 1 : 0;
        }
        EXPECT_GT(accepted, 0);
        EXPECT_LT(accepted, 20000);
        EXPECT_EQ(q.dropped_total(), static_cast<std::uint64_t>(20000 - accepted));
        // The reader comes back: queued lines arrive, then the note with the count.
        const std::string out = read_until(fds[0], "dropped ", 10s);
        ASSERT_NE(out.find("dropped "), std::string::npos);
        const std::string tail = out + read_until(fds[0], "\n", 2s);
        const auto at = tail.find("dropped ");
        EXPECT_GT(std::stoull(tail.substr(at + 8)), 0u);
        EXPECT_TRUE(q.stop(5s));
    }
    close(fds[0]);
    close(fds[1]);
}

TEST(LineQueue, StopWritesEverythingQueuedInOrder) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    LineQueue q({fds[1], 1000, 1u << 20}, nullptr);
    for (int i = 0; i < 100; ++i) {
        ASSERT_TRUE(q.push("line " + std::to_string(i)));
    }
    EXPECT_TRUE(q.stop(5s));
    EXPECT_FALSE(q.push("after stop"));
    close(fds[1]);
    std::string expected;
    for (int i = 0; i < 100; ++i) {
        expected += "line " + std::to_string(i) + "\n";
    }
    EXPECT_EQ(read_until(fds[0], "line 99\n", 2s), expected);
    close(fds[0]);
}

TEST(LineQueue, StopGivesUpOnAnOutputThatStaysBlocked) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    fcntl(fds[1], F_SETPIPE_SZ, 4096);
    auto* q = new LineQueue({fds[1], 1000, 1u << 20}, nullptr);
    for (int i = 0; i < 100; ++i) {
        q->push(std::string(1000, 'y'));
    }
    const auto began = std::chrono::steady_clock::now();
    EXPECT_FALSE(q->stop(300ms));  // the writer is detached, the caller is not held
    EXPECT_LT(std::chrono::steady_clock::now() - began, 5s);
    // The reader comes back: the detached writer finishes before its queue goes away.
    const std::string out = read_until(fds[0], "never", 1s);
    EXPECT_EQ(out.size(), 100u * 1001u);
    EXPECT_TRUE(q->stop(5s));
    delete q;
    close(fds[0]);
    close(fds[1]);
}

}  // namespace
}  // namespace sluice::log
