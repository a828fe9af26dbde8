#include "log/line_queue.hpp"

#include <cerrno>

#include <unistd.h>

namespace sluice::log {

LineQueue::LineQueue(Options opts, DropLine drop_line) : opts_(opts), drop_line_(std::move(drop_line)) {
    lines_.reserve(256);
    thread_ = std::thread([this] { run(); });
}

LineQueue::~LineQueue() {
    stop(std::chrono::seconds(2));
}

bool LineQueue::push(std::string line) noexcept {
    try {
        std::unique_lock lock(mutex_);
        if (stopping_ || lines_.size() >= opts_.max_lines || bytes_ + line.size() + 1 > opts_.max_bytes) {
            lock.unlock();
            dropped_unreported_.fetch_add(1);
            dropped_total_.fetch_add(1);
            return false;
        }
        bytes_ += line.size() + 1;
        lines_.push_back(std::move(line));
        // The writer sleeps on an empty queue, or gathers for a moment after its wake-up; one
        // notify per batch (and one when the queue is half full) keeps pushes off the futex.
        const bool wake = lines_.size() == 1 || lines_.size() == half_full();
        lock.unlock();
        if (wake) {
            wake_.notify_one();
        }
        return true;
    } catch (...) {  // allocation failure: the line is lost, counted, never thrown to a worker
        dropped_unreported_.fetch_add(1);
        dropped_total_.fetch_add(1);
        return false;
    }
}

bool LineQueue::stop(std::chrono::milliseconds wait) {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
    const bool done = finished_cv_.wait_for(lock, wait, [this] { return finished_; });
    lock.unlock();
    if (thread_.joinable()) {
        if (done) {
            thread_.join();
        } else {
            thread_.detach();  // blocked on the descriptor; the process ends around it
        }
    }
    return done;
}

bool LineQueue::write_all(const std::string& bytes) const {
    std::size_t off = 0;
    while (off < bytes.size()) {
        const ssize_t n = ::write(opts_.fd, bytes.data() + off, bytes.size() - off);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;  // EPIPE or a closed descriptor: the output is gone
        }
        off += static_cast<std::size_t>(n);
    }
    return true;
}

void LineQueue::run() {
    std::vector<std::string> batch;
    batch.reserve(256);
    std::string buf;
    for (;;) {
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return !lines_.empty() || stopping_; });
            if (lines_.empty()) {
                break;  // stopping and everything written
            }
            // Let the lines of a moment gather, so that a steady trickle (one access line per
            // request) costs one wake-up and one write per batch rather than per line.
            wake_.wait_for(lock, kGather, [this] { return stopping_ || lines_.size() >= half_full(); });
            batch.swap(lines_);
            bytes_ = 0;
        }
        buf.clear();
        for (const std::string& line : batch) {
            buf += line;
            buf += '\n';
        }
        const std::size_t count = batch.size();
        batch.clear();
        if (!write_all(buf)) {
            dropped_total_.fetch_add(count);
            continue;
        }
        if (const std::uint64_t lost = dropped_unreported_.exchange(0); lost > 0 && drop_line_) {
            std::string note;
            try {
                note = drop_line_(lost) + '\n';
            } catch (...) {
                note.clear();
            }
            (void)write_all(note);
        }
        if (buf.capacity() > (1u << 20)) {
            std::string().swap(buf);  // one burst does not keep its buffer for ever
        }
    }
    std::lock_guard lock(mutex_);
    finished_ = true;
    finished_cv_.notify_all();
}

}  // namespace sluice::log
