#pragma once

// The process's open-file limit against what the configured connection cap needs. A gateway
// that runs out of descriptors fails accept() and upstream connects alike, so at start sluice
// raises its soft limit as far as the hard limit allows and says so plainly when even that is
// not enough for server.max_connections.

#include <cstdint>
#include <optional>
#include <string>

namespace sluice {

struct FdLimit {
    std::uint64_t soft_before = 0;
    std::uint64_t soft = 0;  ///< after raising
    std::uint64_t hard = 0;
    std::uint64_t needed = 0;            ///< descriptors max_connections can use
    std::optional<std::string> warning;  ///< set when `needed` does not fit in `soft`
};

/// Descriptors that `max_connections` downstream connections can hold: each proxied request
/// holds its client socket and an upstream one, plus a reserve for listeners, event loops, the
/// log and the idle pools.
std::uint64_t descriptors_needed(std::uint64_t max_connections, std::uint64_t workers) noexcept;

/// Raises the soft RLIMIT_NOFILE to the hard limit (never lowers it) and reports the shortfall,
/// if any, against `needed`.
FdLimit raise_open_file_limit(std::uint64_t needed);

/// The current soft open-file limit (for messages), 0 when unknown.
std::uint64_t open_file_limit() noexcept;

}  // namespace sluice
