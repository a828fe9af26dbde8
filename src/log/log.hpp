#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>
#include <sluice/config.hpp>
#include <sluice/request_context.hpp>

namespace sluice::log {

/// Configures the process logger (level and text/json format). Call once at start-up.
void setup(const LogConfig& cfg);
/// Writes what is still queued and stops the writer thread, waiting at most `wait` for a blocked
/// output. Call once before the process exits.
void shutdown(std::chrono::milliseconds wait);
/// Whether a line at `level` is written.
bool enabled(spdlog::level::level_enum level) noexcept;
/// A log line; in json format it becomes {"ts","level","msg"}. Queued for the writer thread:
/// never blocks on the output.
void write(spdlog::level::level_enum level, std::string_view msg);
/// Lines lost because the output was blocked and the queue full, since the start.
std::uint64_t dropped_lines() noexcept;

/// Text-format helpers (public for tests): a key=value value is written bare, or JSON-quoted
/// when it holds a space, '"', '=' or any control byte, so no value can end a line.
bool needs_quotes(std::string_view value) noexcept;
void append_text_value(std::string& out, std::string_view value);
/// `text` with every control byte written as \xNN.
std::string escape_controls(std::string_view text);

template <class... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(spdlog::level::info)) {
        write(spdlog::level::info, fmt::format(f, std::forward<Args>(args)...));
    }
}
template <class... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(spdlog::level::warn)) {
        write(spdlog::level::warn, fmt::format(f, std::forward<Args>(args)...));
    }
}
template <class... Args>
void error(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(spdlog::level::err)) {
        write(spdlog::level::err, fmt::format(f, std::forward<Args>(args)...));
    }
}
template <class... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(spdlog::level::debug)) {
        write(spdlog::level::debug, fmt::format(f, std::forward<Args>(args)...));
    }
}

/// One structured access-log line per API request: request id, key name (never the key), route,
/// provider, upstream model, status, duration, time to first byte, tokens, bytes in/out.
void access(const RequestContext& ctx, std::string_view method, std::string_view path);
bool access_enabled() noexcept;

}  // namespace sluice::log
