#pragma once

// Log output off the event loops. Workers hand finished lines to a bounded queue; one writer
// thread writes them to a file descriptor in batches (it lets lines gather for 2 ms after each
// wake-up, so a steady trickle costs one wake-up per batch). A blocked descriptor (a full
// container log pipe) stalls only the writer: workers never wait on it. When the queue is full a
// line is dropped and counted, and once a write succeeds again the writer adds one line saying
// how many were lost.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace sluice::log {

class LineQueue {
public:
    struct Options {
        int fd = 1;                         ///< where lines go (not closed by the queue)
        std::size_t max_lines = 16384;      ///< queued lines past which new ones are dropped
        std::size_t max_bytes = 16u << 20;  ///< queued bytes past which new ones are dropped
    };
    /// Formats the line that reports `dropped` lost lines (without the trailing newline).
    using DropLine = std::function<std::string(std::uint64_t dropped)>;

    LineQueue(Options opts, DropLine drop_line);
    /// Stops as stop(2 s) does.
    ~LineQueue();
    LineQueue(const LineQueue&) = delete;
    LineQueue& operator=(const LineQueue&) = delete;

    /// Queues one line (without its newline). Never blocks on the descriptor; false when the
    /// line was dropped because the queue is full or stopped.
    bool push(std::string line) noexcept;
    /// Writes what is queued, then ends the writer. Waits at most `wait` for a blocked
    /// descriptor; true when every queued line was written (or failed to write) in time.
    bool stop(std::chrono::milliseconds wait);

    /// Lines dropped since the start, the reported ones included.
    std::uint64_t dropped_total() const noexcept { return dropped_total_.load(); }

private:
    /// How long the writer lets lines gather after a wake-up before it writes them.
    static constexpr std::chrono::milliseconds kGather{2};

    std::size_t half_full() const noexcept { return opts_.max_lines / 2 > 0 ? opts_.max_lines / 2 : 1; }
    void run();
    bool write_all(const std::string& bytes) const;

    Options opts_;
    DropLine drop_line_;
    std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable finished_cv_;
    std::vector<std::string> lines_;
    std::size_t bytes_ = 0;
    bool stopping_ = false;
    bool finished_ = false;
    std::atomic<std::uint64_t> dropped_unreported_{0};
    std::atomic<std::uint64_t> dropped_total_{0};
    std::thread thread_;
};

}  // namespace sluice::log
