#pragma once

#include <chrono>
#include <cstdint>

namespace sluice {

/// Time as filters and services read it: injected, so that tests run on a fake clock.
class Clock {
public:
    using steady = std::chrono::steady_clock;
    using wall = std::chrono::system_clock;
    virtual ~Clock() = default;
    virtual steady::time_point now() const = 0;     ///< for durations and deadlines
    virtual wall::time_point wall_now() const = 0;  ///< for calendar periods and dates
};

/// Seconds since the Unix epoch: the dates in answers (`created`) and HTTP-date Retry-After.
inline std::int64_t unix_seconds(Clock::wall::time_point t) noexcept {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

/// The process's real clocks.
class SystemClock final : public Clock {
public:
    steady::time_point now() const override { return steady::now(); }
    wall::time_point wall_now() const override { return wall::now(); }
};

/// The services a filter factory may hand to the filters it builds. Each later capability adds
/// its service here (state store, metrics sink, price book); a filter keeps the references.
struct Services {
    const Clock& clock;
};

}  // namespace sluice
