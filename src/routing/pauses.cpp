#include "routing/pauses.hpp"

#include <algorithm>

namespace sluice::routing {

void Pauses::pause(std::string_view model, Clock::time_point until) {
    {
        std::lock_guard lock(mutex_);
        const auto it = until_.find(std::string(model));
        if (it != until_.end()) {
            it->second = std::max(it->second, until);
        } else {
            if (until_.size() >= max_models_) {
                sweep(Clock::now());
            }
            if (until_.size() >= max_models_) {
                // Still full of live pauses: the one ending soonest makes room.
                auto soonest =
                    std::min_element(until_.begin(), until_.end(),
                                     [](const auto& a, const auto& b) { return a.second < b.second; });
                until_.erase(soonest);
            }
            until_.emplace(std::string(model), until);
        }
    }
    Clock::rep seen = latest_.load(std::memory_order_relaxed);
    const Clock::rep mine = until.time_since_epoch().count();
    while (seen < mine && !latest_.compare_exchange_weak(seen, mine, std::memory_order_relaxed)) {
    }
}

Clock::time_point Pauses::paused_until(std::string_view model, Clock::time_point now) const {
    if (now.time_since_epoch().count() >= latest_.load(std::memory_order_relaxed)) {
        return now;  // every pause ever recorded has ended
    }
    std::lock_guard lock(mutex_);
    const auto it = until_.find(std::string(model));
    return it == until_.end() ? now : std::max(now, it->second);
}

std::size_t Pauses::size() const {
    std::lock_guard lock(mutex_);
    return until_.size();
}

void Pauses::sweep(Clock::time_point now) {
    for (auto it = until_.begin(); it != until_.end();) {
        it = it->second <= now ? until_.erase(it) : std::next(it);
    }
}

}  // namespace sluice::routing
