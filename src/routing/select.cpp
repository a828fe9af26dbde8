#include "routing/select.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <string>

#include <sluice/error.hpp>

#include "util/strings.hpp"

namespace sluice::routing {

Strategy parse_strategy(std::string_view name) noexcept {
    if (name == "fallback") {
        return Strategy::fallback;
    }
    if (name == "least_latency") {
        return Strategy::least_latency;
    }
    if (name == "least_busy") {
        return Strategy::least_busy;
    }
    return Strategy::weighted;
}

const char* strategy_name(Strategy s) noexcept {
    switch (s) {
        case Strategy::weighted: return "weighted";
        case Strategy::fallback: return "fallback";
        case Strategy::least_latency: return "least_latency";
        case Strategy::least_busy: return "least_busy";
    }
    return "weighted";
}

namespace {
std::uint64_t uniform(Rng& rng, std::uint64_t n) {  // [0, n)
    std::uniform_int_distribution<std::uint64_t> dist(0, n - 1);
    return dist(rng);
}

/// Weighted pick among the candidates for which `in` is true.
template <class Pred>
std::size_t weighted_among(std::span<const Candidate> c, Rng& rng, Pred in) {
    std::uint64_t total = 0;
    std::size_t last = 0;
    for (std::size_t i = 0; i < c.size(); ++i) {
        if (in(c[i])) {
            total += std::max(1u, c[i].weight);
            last = i;
        }
    }
    if (total == 0) {
        return 0;
    }
    std::uint64_t r = uniform(rng, total);
    for (std::size_t i = 0; i < c.size(); ++i) {
        if (!in(c[i])) {
            continue;
        }
        const std::uint64_t w = std::max(1u, c[i].weight);
        if (r < w) {
            return i;
        }
        r -= w;
    }
    return last;
}
}  // namespace

std::size_t choose_weighted(std::span<const Candidate> c, Rng& rng) {
    return weighted_among(c, rng, [](const Candidate&) { return true; });
}

std::size_t choose(Strategy s, std::span<const Candidate> c, Rng& rng, const ChooseOptions& o) {
    if (c.size() <= 1) {
        return 0;
    }
    switch (s) {
        case Strategy::weighted: return choose_weighted(c, rng);
        case Strategy::fallback: return 0;  // candidates are in route order
        case Strategy::least_busy: {
            // Fewest in-flight requests per unit of weight; ties share by weight.
            double best = 0;
            bool first = true;
            for (const auto& x : c) {
                const double load = static_cast<double>(x.in_flight) / std::max(1u, x.weight);
                if (first || load < best) {
                    best = load;
                    first = false;
                }
            }
            return weighted_among(c, rng, [best](const Candidate& x) {
                return static_cast<double>(x.in_flight) / std::max(1u, x.weight) <= best;
            });
        }
        case Strategy::least_latency: {
            // Unmeasured targets are tried first (they may be the fastest); a small share of
            // picks is random so a slow target that recovered gets measured again.
            if (std::any_of(c.begin(), c.end(), [](const Candidate& x) { return x.score < 0; })) {
                return weighted_among(c, rng, [](const Candidate& x) { return x.score < 0; });
            }
            if (o.explore > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng) < o.explore) {
                return choose_weighted(c, rng);
            }
            double best = c[0].score;
            for (const auto& x : c) {
                best = std::min(best, x.score);
            }
            const double limit = best * (1.0 + o.band);
            return weighted_among(c, rng, [limit](const Candidate& x) { return x.score <= limit; });
        }
    }
    return 0;
}

std::chrono::milliseconds backoff_delay(const RetryConfig& r, unsigned retry, Rng& rng) {
    const auto base = static_cast<std::uint64_t>(r.backoff_base.count());
    const auto cap = static_cast<std::uint64_t>(r.backoff_cap.count());
    std::uint64_t ceiling = base;
    for (unsigned i = 0; i < retry && ceiling < cap; ++i) {
        ceiling *= 2;
    }
    ceiling = std::min(ceiling, cap);
    if (ceiling == 0) {
        return std::chrono::milliseconds(0);
    }
    return std::chrono::milliseconds(static_cast<std::int64_t>(uniform(rng, ceiling + 1)));
}

namespace {
std::optional<double> plain_number(std::string_view v) {
    v = trim_ows(v);
    if (v.empty() || v.size() > 20 || v.find_first_not_of("0123456789.") != std::string_view::npos ||
        v.front() == '.') {
        return std::nullopt;
    }
    const std::string s(v);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || !std::isfinite(d) || d < 0) {
        return std::nullopt;
    }
    return d;
}

std::optional<std::int64_t> http_date(std::string_view v) {
    // RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms.
    const std::string s(trim_ows(v));
    for (const char* fmt :
         {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"}) {
        std::tm tm{};
        const char* end = strptime(s.c_str(), fmt, &tm);
        if (end != nullptr && *end == '\0') {
            return static_cast<std::int64_t>(timegm(&tm));
        }
    }
    return std::nullopt;
}
}  // namespace

std::optional<std::chrono::milliseconds> parse_retry_after(std::string_view retry_after_ms,
                                                           std::string_view ms_retry_after_ms,
                                                           std::string_view retry_after,
                                                           std::int64_t now_unix) {
    using std::chrono::milliseconds;
    constexpr double kMaxMs = 24.0 * 3600 * 1000;  // anything longer is treated as a day
    for (const auto v : {retry_after_ms, ms_retry_after_ms}) {
        if (const auto ms = plain_number(v)) {
            return milliseconds(static_cast<std::int64_t>(std::ceil(std::min(*ms, kMaxMs))));
        }
    }
    if (retry_after.empty()) {
        return std::nullopt;
    }
    if (const auto secs = plain_number(retry_after)) {
        return milliseconds(static_cast<std::int64_t>(std::ceil(std::min(*secs * 1000.0, kMaxMs))));
    }
    if (const auto when = http_date(retry_after)) {
        const double ms = std::clamp(static_cast<double>(*when - now_unix) * 1000.0, 0.0, kMaxMs);
        return milliseconds(static_cast<std::int64_t>(ms));
    }
    return std::nullopt;
}

namespace {
bool contains_ci(std::string_view hay, std::string_view needle) {
    if (needle.size() > hay.size()) {
        return false;
    }
    for (std::size_t i = 0; i + needle.size() <= hay.size(); ++i) {
        if (iequals(hay.substr(i, needle.size()), needle)) {
            return true;
        }
    }
    return false;
}
}  // namespace

ErrorClass classify(const GatewayError& e) {
    // Codes and phrases of OpenAI, Azure, Anthropic, Gemini, Bedrock and vLLM-style servers.
    if (e.code == "context_length_exceeded" || e.code == "string_above_max_length") {
        return ErrorClass::context_length_exceeded;
    }
    if (e.code == "content_policy_violation" || e.code == "content_filter" || e.code == "content_filtered" ||
        e.code == "responsible_ai_policy_violation") {
        return ErrorClass::content_policy;
    }
    if (e.status != 400 && e.status != 413 && e.status != 422) {
        return ErrorClass::none;
    }
    for (const char* p : {"maximum context length", "context length", "context window", "prompt is too long",
                          "input is too long", "too many input tokens",
                          "exceeds the maximum number of tokens", "exceed context limit"}) {
        if (contains_ci(e.message, p)) {
            return ErrorClass::context_length_exceeded;
        }
    }
    for (const char* p : {"content management policy", "content policy", "safety system", "content filter"}) {
        if (contains_ci(e.message, p)) {
            return ErrorClass::content_policy;
        }
    }
    return ErrorClass::none;
}

const char* error_class_name(ErrorClass c) noexcept {
    switch (c) {
        case ErrorClass::context_length_exceeded: return "context_length_exceeded";
        case ErrorClass::content_policy: return "content_policy";
        case ErrorClass::none: return "";
    }
    return "";
}

}  // namespace sluice::routing
