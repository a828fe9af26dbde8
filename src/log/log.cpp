#include "log/log.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include <atomic>
#include <memory>

#include <unistd.h>

#include "http/http_parser.hpp"
#include "log/line_queue.hpp"
#include "runtime/runtime.hpp"
#include "util/strings.hpp"

namespace sluice::log {

namespace {
/// Bytes that make a text-format value need quotes: controls, space, DEL, '"' and '='.
constexpr std::array<bool, 256> kNeedsQuotes = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c <= 0x20; ++c) {
        t[static_cast<std::size_t>(c)] = true;
    }
    t[0x7f] = true;
    t[static_cast<unsigned char>('"')] = true;
    t[static_cast<unsigned char>('=')] = true;
    return t;
}();
}  // namespace

bool needs_quotes(std::string_view value) noexcept {
    for (const char ch : value) {
        if (kNeedsQuotes[static_cast<unsigned char>(ch)]) {
            return true;
        }
    }
    return false;
}

void append_text_value(std::string& out, std::string_view value) {
    if (needs_quotes(value)) {
        append_json_string(out, value);  // \n, \r and every other control byte escaped
    } else {
        out += value;
    }
}

std::string escape_controls(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            out += buf;
        } else {
            out += ch;
        }
    }
    return out;
}

namespace {
bool g_json = false;
bool g_access = true;

void append_kv(std::string& out, bool json, std::string_view key, std::string_view value, bool quote) {
    if (json) {
        out += ",\"";
        out += key;
        out += "\":";
        if (quote) {
            append_json_string(out, value);
        } else {
            out += value;
        }
    } else {
        const std::size_t at = out.size();
        out.resize(at + key.size() + 2);
        char* p = out.data() + at;
        *p = ' ';
        std::memcpy(p + 1, key.data(), key.size());
        p[key.size() + 1] = '=';
        if (value.empty()) {
            out += '-';
        } else {
            append_text_value(out, value);
        }
    }
}

std::string ms(double v) {
    return std::string(NumberText::fixed3(v).view());
}

/// UTC time with milliseconds, e.g. 2026-11-29T19:38:30.123Z. The seconds part is formatted
/// once per second per thread.
void append_iso_now(std::string& out) {
    const auto now = std::chrono::system_clock::now();
    const auto since = now.time_since_epoch();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since).count() % 1000;
    thread_local std::time_t cached_second = -1;
    thread_local char cached[32];
    thread_local std::size_t cached_len = 0;
    if (t != cached_second) {
        std::tm tm{};
        gmtime_r(&t, &tm);
        cached_len = std::strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_second = t;
    }
    out.append(cached, cached_len);
    const char frac[6] = {'.',
                          static_cast<char>('0' + millis / 100),
                          static_cast<char>('0' + millis / 10 % 10),
                          static_cast<char>('0' + millis % 10),
                          'Z',
                          '\0'};
    out.append(frac, 5);
}

std::string iso_now() {
    std::string s;
    append_iso_now(s);
    return s;
}
}  // namespace

namespace {
std::atomic<int> g_level{spdlog::level::info};
/// Never destroyed: a writer blocked on the output at exit is detached, not torn down.
LineQueue* g_queue = nullptr;

/// The whole line for `msg` at `level`, without its newline.
std::string format_line(spdlog::level::level_enum level, std::string_view msg) {
    const auto lv = spdlog::level::to_string_view(level);
    const std::string_view level_name(lv.data(), lv.size());
    std::string out;
    if (!g_json) {
        out.reserve(msg.size() + 40);
        append_iso_now(out);
        out += ' ';
        out += level_name;
        out += ' ';
        // One message, one line: a value that came from a client cannot forge another.
        bool clean = true;
        for (const char ch : msg) {
            const auto c = static_cast<unsigned char>(ch);
            clean = clean && c >= 0x20 && c != 0x7f;
        }
        if (clean) {
            out += msg;
        } else {
            out += escape_controls(msg);
        }
        return out;
    }
    out = "{\"ts\":";
    append_json_string(out, iso_now());
    out += ",\"level\":";
    append_json_string(out, level_name);
    out += ",\"msg\":";
    append_json_string(out, msg);
    out += '}';
    return out;
}

void emit(std::string line) {
    if (g_queue != nullptr) {
        g_queue->push(std::move(line));
        return;
    }
    line += '\n';  // before setup (tools, unit tests): straight to stderr
    (void)!::write(2, line.data(), line.size());
}
}  // namespace

void setup(const LogConfig& cfg) {
    g_json = cfg.format == "json";
    g_access = cfg.access_log;
    g_level.store(spdlog::level::from_str(cfg.level));
    if (g_queue == nullptr) {
        LineQueue::Options opts;
        opts.fd = 1;
        opts.max_lines = cfg.queue_lines;
        g_queue = new LineQueue(opts, [](std::uint64_t lost) {
            return format_line(spdlog::level::warn,
                               fmt::format("{} log line(s) dropped: the output was blocked and "
                                           "the log queue full",
                                           lost));
        });
    }
}

void shutdown(std::chrono::milliseconds wait) {
    if (g_queue != nullptr) {
        g_queue->stop(wait);
    }
}

bool enabled(spdlog::level::level_enum level) noexcept {
    return level >= g_level.load(std::memory_order_relaxed) && level != spdlog::level::off;
}

std::uint64_t dropped_lines() noexcept {
    return g_queue != nullptr ? g_queue->dropped_total() : 0;
}

bool access_enabled() noexcept {
    return g_access && enabled(spdlog::level::info);
}

void write(spdlog::level::level_enum level, std::string_view msg) {
    emit(format_line(level, msg));
}

namespace {
void append_attempts(std::string& out, bool json, const RequestContext& ctx) {
    using millis = std::chrono::duration<double, std::milli>;
    if (json) {
        out += ",\"attempts\":[";
        for (std::size_t i = 0; i < ctx.attempts.size(); ++i) {
            const Attempt& a = ctx.attempts[i];
            out += i == 0 ? "{" : ",{";
            out += "\"route\":";
            append_json_string(out, a.route != nullptr ? std::string_view(a.route->name) : "");
            out += ",\"provider\":";
            append_json_string(out, a.provider != nullptr ? std::string_view(a.provider->name()) : "");
            out += ",\"model\":";
            append_json_string(out, a.model);
            out += ",\"status\":";
            out += NumberText::integer(a.status).view();
            out += ",\"error\":";
            if (a.error.empty()) {
                out += "null";
            } else {
                append_json_string(out, a.error);
            }
            out += ",\"duration_ms\":";
            out += NumberText::fixed3(millis(a.duration).count()).view();
            out += '}';
        }
        out += ']';
        return;
    }
    // text: attempts=provider/model:status:error:ms,... (error "-" on success)
    std::string list;
    for (const Attempt& a : ctx.attempts) {
        list += list.empty() ? "" : ",";
        list += a.provider != nullptr ? a.provider->name() : std::string();
        list += '/';
        list += a.model;
        list += ':' + std::to_string(a.status) + ':' + (a.error.empty() ? std::string("-") : a.error);
        list += ':' + ms(millis(a.duration).count());
    }
    append_kv(out, false, "attempts", list, true);
}
}  // namespace

void access(const RequestContext& ctx, std::string_view method, std::string_view path) {
    if (!access_enabled()) {
        return;
    }
    using millis = std::chrono::duration<double, std::milli>;
    const auto now = RequestContext::Clock::now();
    const double total_ms = millis(now - ctx.started).count();
    const double ttfb =
        ctx.first_byte.time_since_epoch().count() == 0 ? -1.0 : millis(ctx.first_byte - ctx.started).count();
    std::string out;
    out.reserve(384);
    if (g_json) {
        out = "{\"ts\":";
        append_json_string(out, iso_now());
        out += ",\"level\":\"info\",\"msg\":\"access\"";
    } else {
        append_iso_now(out);
        out += " info access";
    }
    const Provider* provider = ctx.attempts.empty() ? nullptr : ctx.attempts.back().provider;
    const std::string_view upstream_model =
        ctx.attempts.empty() ? std::string_view() : ctx.attempts.back().model;
    append_kv(out, g_json, "request_id", ctx.request_id, true);
    append_kv(out, g_json, "method", method, true);
    append_kv(out, g_json, "path", path, true);
    append_kv(out, g_json, "key", ctx.key != nullptr ? std::string_view(ctx.key->name) : "", true);
    append_kv(out, g_json, "model", ctx.api.model, true);
    append_kv(out, g_json, "route", ctx.route != nullptr ? std::string_view(ctx.route->name) : "", true);
    append_kv(out, g_json, "provider", provider != nullptr ? std::string_view(provider->name()) : "", true);
    append_kv(out, g_json, "upstream_model", upstream_model, true);
    append_kv(out, g_json, "stream", ctx.api.stream ? "true" : "false", false);
    append_kv(out, g_json, "status", NumberText::integer(ctx.status).view(), false);
    if (!ctx.error_code.empty()) {
        append_kv(out, g_json, "error", ctx.error_code, true);
    }
    append_kv(out, g_json, "duration_ms", NumberText::fixed3(total_ms).view(), false);
    const NumberText ttfb_text = NumberText::fixed3(ttfb);
    append_kv(out, g_json, "ttfb_ms", ttfb < 0 ? (g_json ? "null" : "") : ttfb_text.view(), false);
    // A count the provider did not report: null in JSON, "-" in text.
    const auto tokens = [](std::int64_t v) { return v < 0 ? NumberText() : NumberText::integer(v); };
    const std::string_view unknown = g_json ? "null" : "";
    const NumberText prompt = tokens(ctx.usage.prompt_tokens);
    const NumberText completion = tokens(ctx.usage.completion_tokens);
    append_kv(out, g_json, "prompt_tokens", ctx.usage.prompt_tokens < 0 ? unknown : prompt.view(), false);
    append_kv(out, g_json, "completion_tokens", ctx.usage.completion_tokens < 0 ? unknown : completion.view(),
              false);
    append_kv(out, g_json, "bytes_in", NumberText::integer(static_cast<std::int64_t>(ctx.bytes_in)).view(),
              false);
    append_kv(out, g_json, "bytes_out", NumberText::integer(static_cast<std::int64_t>(ctx.bytes_out)).view(),
              false);
    if (ctx.client_gone) {
        append_kv(out, g_json, "client_gone", "true", false);
    }
    if (ctx.attempts.size() > 1 || (ctx.attempts.size() == 1 && !ctx.attempts[0].error.empty())) {
        // Every attempt with its outcome: route, provider/model, status, error, milliseconds.
        append_attempts(out, g_json, ctx);
    }
    if (g_json) {
        out += '}';
    }
    emit(std::move(out));
}

}  // namespace sluice::log
