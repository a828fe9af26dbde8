#pragma once

// A provider's Retry-After applies to what it answered about: the (provider, upstream model)
// pair. One 429 for one model must not take the deployment out for every other model behind a
// glob route (LiteLLM's "No deployments available" after one 429). One Pauses per provider,
// shared by every route, target and worker.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sluice::routing {

using Clock = std::chrono::steady_clock;

class Pauses {
public:
    /// `max_models` bounds the table: model names may come from clients (glob routes).
    explicit Pauses(std::size_t max_models = 10000) : max_models_(max_models) {}
    Pauses(const Pauses&) = delete;
    Pauses& operator=(const Pauses&) = delete;

    /// The provider asked not to send `model` before `until`. Never shortens a pause.
    void pause(std::string_view model, Clock::time_point until);
    /// When `model` may be sent again: a time <= now when it is not paused. No lock while no
    /// pause is running (the common case).
    Clock::time_point paused_until(std::string_view model, Clock::time_point now) const;
    /// Models with a pause recorded (expired ones included until they are swept).
    std::size_t size() const;

private:
    void sweep(Clock::time_point now);  // mutex held

    const std::size_t max_models_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, Clock::time_point> until_;
    /// The latest `until` recorded: before it nothing needs the lock.
    std::atomic<Clock::rep> latest_{Clock::time_point::min().time_since_epoch().count()};
};

}  // namespace sluice::routing
