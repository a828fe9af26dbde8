// YAML → GatewayConfig. Strict: unknown keys, duplicate keys, tags and wrong types are errors,
// each reported with its YAML path and line; all errors are collected before failing.
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <type_traits>

#include <yaml-cpp/yaml.h>
#include <sluice/config.hpp>

#include "providers/registry.hpp"
#include "util/url.hpp"

namespace sluice {

namespace {

std::string join_lines(const std::vector<std::string>& errors) {
    std::string out;
    for (const auto& e : errors) {
        if (!out.empty()) {
            out += '\n';
        }
        out += e;
    }
    return out;
}

constexpr std::size_t kMaxConfigBytes = 4 * 1024 * 1024;
constexpr int kMaxFlowDepth = 64;

/// yaml-cpp parses recursively: refuse input nested deeper than any real config before handing
/// it over, so a hostile file cannot exhaust the stack (RELIABILITY I3).
bool nesting_is_sane(const std::string& text) {
    int depth = 0;
    int indent_depth = 0;
    bool in_single = false;
    bool in_double = false;
    bool in_comment = false;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\n') {
            in_comment = false;
            in_single = false;
            line_start = i + 1;
            continue;
        }
        if (in_comment) {
            continue;
        }
        if (in_double) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_double = false;
            }
            continue;
        }
        if (in_single) {
            if (c == '\'') {
                in_single = false;
            }
            continue;
        }
        switch (c) {
            case '#': in_comment = true; break;
            case '"': in_double = true; break;
            case '\'': in_single = true; break;
            case '[':
            case '{':
                if (++depth > kMaxFlowDepth) {
                    return false;
                }
                break;
            case ']':
            case '}':
                if (depth > 0) {
                    --depth;
                }
                break;
            default: break;
        }
        if (i == line_start) {
            std::size_t spaces = 0;
            while (i + spaces < text.size() && text[i + spaces] == ' ') {
                ++spaces;
            }
            indent_depth = static_cast<int>(spaces / 2);
            if (indent_depth > kMaxFlowDepth * 2) {
                return false;
            }
        }
    }
    return true;
}

class Decoder {
public:
    explicit Decoder(const std::map<std::string, std::string>* env) : env_(env) {}

    std::vector<std::string> errors;
    std::vector<std::string> warnings;

    static int line_of(const YAML::Node& n) {
        const auto mark = n.Mark();
        return mark.line >= 0 ? mark.line + 1 : 0;
    }

    void error(const std::string& path, const YAML::Node& n, const std::string& msg) {
        const int line = line_of(n);
        if (line > 0) {
            errors.push_back(path + " (line " + std::to_string(line) + "): " + msg);
        } else {
            errors.push_back(path + ": " + msg);
        }
    }

    bool is_map(const YAML::Node& n, const std::string& path) {
        if (!n.IsMap()) {
            error(path, n, "expected a mapping");
            return false;
        }
        return true;
    }

    /// Checks that every key of `n` is in `allowed` and appears once.
    void check_keys(const YAML::Node& n, const std::string& path,
                    std::initializer_list<const char*> allowed) {
        std::set<std::string> seen;
        for (const auto& kv : n) {
            if (!kv.first.IsScalar()) {
                error(path, kv.first, "keys must be plain strings");
                continue;
            }
            const auto key = kv.first.Scalar();
            bool known = false;
            for (const char* a : allowed) {
                if (key == a) {
                    known = true;
                    break;
                }
            }
            if (!known) {
                std::string list;
                for (const char* a : allowed) {
                    list += list.empty() ? "" : ", ";
                    list += a;
                }
                error(path + "." + key, kv.first, "unknown key (expected one of: " + list + ")");
            }
            if (!seen.insert(key).second) {
                error(path + "." + key, kv.first, "duplicate key");
            }
        }
    }

    /// Scalar value with ${VAR} / ${VAR:-default} substituted.
    std::optional<std::string> scalar(const YAML::Node& n, const std::string& path) {
        if (!n.IsScalar()) {
            error(path, n, "expected a scalar value");
            return std::nullopt;
        }
        const auto& tag = n.Tag();
        if (!tag.empty() && tag != "?" && tag != "!") {
            error(path, n, "YAML tags (" + tag + ") are not supported");
            return std::nullopt;
        }
        return substitute(n.Scalar(), path, n);
    }

    std::optional<std::string> substitute(const std::string& in, const std::string& path,
                                          const YAML::Node& n) {
        std::string out;
        out.reserve(in.size());
        for (std::size_t i = 0; i < in.size(); ++i) {
            if (in[i] == '$' && i + 1 < in.size() && in[i + 1] == '$') {
                out.push_back('$');
                ++i;
                continue;
            }
            if (in[i] != '$' || i + 1 >= in.size() || in[i + 1] != '{') {
                out.push_back(in[i]);
                continue;
            }
            const auto close = in.find('}', i + 2);
            if (close == std::string::npos) {
                error(path, n, "unterminated ${...} substitution");
                return std::nullopt;
            }
            const std::string expr = in.substr(i + 2, close - i - 2);
            std::string name = expr;
            std::optional<std::string> fallback;
            if (const auto d = expr.find(":-"); d != std::string::npos) {
                name = expr.substr(0, d);
                fallback = expr.substr(d + 2);
            }
            bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
            for (const char c : name) {
                valid = valid && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
            }
            if (!valid) {
                error(path, n, "invalid variable name in ${" + expr + "}");
                return std::nullopt;
            }
            const auto value = lookup(name);
            if (value && !value->empty()) {
                out += *value;
            } else if (fallback) {
                out += *fallback;
            }
            i = close;
        }
        return out;
    }

    std::optional<std::string> lookup(const std::string& name) const {
        if (env_ != nullptr) {
            const auto it = env_->find(name);
            if (it == env_->end()) {
                return std::nullopt;
            }
            return it->second;
        }
        const char* v = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): startup only
        if (v == nullptr) {
            return std::nullopt;
        }
        return std::string(v);
    }

    void string_field(const YAML::Node& parent, const char* key, const std::string& path, std::string& out) {
        const auto n = parent[key];
        if (!n) {
            return;
        }
        if (auto v = scalar(n, path + "." + key)) {
            out = *v;
        }
    }

    void bool_field(const YAML::Node& parent, const char* key, const std::string& path, bool& out) {
        const auto n = parent[key];
        if (!n) {
            return;
        }
        const auto v = scalar(n, path + "." + key);
        if (!v) {
            return;
        }
        if (*v == "true") {
            out = true;
        } else if (*v == "false") {
            out = false;
        } else {
            error(path + "." + key, n, "expected true or false, got '" + *v + "'");
        }
    }

    template <class Int>
    void int_field(const YAML::Node& parent, const char* key, const std::string& path, Int& out,
                   long long min, long long max) {
        if (const auto v = number<long long>(parent, key, path, min, max)) {
            out = static_cast<Int>(*v);
        }
    }

    void double_field(const YAML::Node& parent, const char* key, const std::string& path, double& out,
                      double min, double max) {
        if (const auto v = number<double>(parent, key, path, min, max)) {
            out = *v;
        }
    }

    /// parent[key] as an integer (long long) or a finite number (double) within [min, max];
    /// nullopt when absent or wrong (with the error recorded).
    template <class Num>
    std::optional<Num> number(const YAML::Node& parent, const char* key, const std::string& path, Num min,
                              Num max) {
        constexpr bool integral = std::is_integral_v<Num>;
        const auto n = parent[key];
        if (!n) {
            return std::nullopt;
        }
        const auto v = scalar(n, path + "." + key);
        if (!v) {
            return std::nullopt;
        }
        char* end = nullptr;
        errno = 0;
        Num parsed{};
        if constexpr (integral) {
            parsed = std::strtoll(v->c_str(), &end, 10);
        } else {
            parsed = std::strtod(v->c_str(), &end);
        }
        bool ok = !v->empty() && end == v->c_str() + v->size() && errno == 0;
        if constexpr (!integral) {
            ok = ok && std::isfinite(parsed);
        }
        if (!ok) {
            error(path + "." + key, n,
                  std::string(integral ? "expected an integer" : "expected a number") + ", got '" + *v + "'");
            return std::nullopt;
        }
        if (parsed < min || parsed > max) {
            error(path + "." + key, n,
                  "must be between " + format_number(min) + " and " + format_number(max));
            return std::nullopt;
        }
        return parsed;
    }

    template <class Num>
    static std::string format_number(Num v) {
        if constexpr (std::is_integral_v<Num>) {
            return std::to_string(v);
        } else {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%g", v);
            return buf;
        }
    }

    void optional_duration(const YAML::Node& parent, const char* key, const std::string& path,
                           std::optional<Duration>& out, bool allow_zero = false) {
        if (!parent[key]) {
            return;
        }
        Duration d{0};
        const auto before = errors.size();
        duration_field(parent, key, path, d, allow_zero);
        if (errors.size() == before) {
            out = d;
        }
    }

    void duration_field(const YAML::Node& parent, const char* key, const std::string& path, Duration& out,
                        bool allow_zero = false) {
        const auto n = parent[key];
        if (!n) {
            return;
        }
        const auto v = scalar(n, path + "." + key);
        if (!v) {
            return;
        }
        const auto d = parse_duration(*v);
        if (!d) {
            error(path + "." + key, n, "expected a duration such as 500ms, 10s, 5m or 1h, got '" + *v + "'");
            return;
        }
        if (d->count() == 0 && !allow_zero) {
            error(path + "." + key, n, "must be greater than zero");
            return;
        }
        out = *d;
    }

    void string_list(const YAML::Node& parent, const char* key, const std::string& path,
                     std::vector<std::string>& out) {
        const auto n = parent[key];
        if (!n) {
            return;
        }
        const std::string p = path + "." + key;
        if (!n.IsSequence()) {
            error(p, n, "expected a list of strings");
            return;
        }
        for (std::size_t i = 0; i < n.size(); ++i) {
            if (auto v = scalar(n[i], p + "[" + std::to_string(i) + "]")) {
                out.push_back(*v);
            }
        }
    }

private:
    const std::map<std::string, std::string>* env_;
};

void decode_server(Decoder& d, const YAML::Node& n, ServerConfig& s) {
    const std::string p = "server";
    if (!d.is_map(n, p)) {
        return;
    }
    d.check_keys(n, p,
                 {"listen", "threads", "max_header_bytes", "max_body_bytes", "header_timeout", "body_timeout",
                  "idle_timeout", "write_timeout", "drain_timeout", "max_connections",
                  "max_requests_per_connection", "allow_unauthenticated"});
    d.string_field(n, "listen", p, s.listen);
    if (n["listen"] && !parse_host_port(s.listen)) {
        d.error(p + ".listen", n["listen"], "expected HOST:PORT, got '" + s.listen + "'");
    }
    d.int_field(n, "threads", p, s.threads, 0, 256);
    d.int_field(n, "max_header_bytes", p, s.max_header_bytes, 1024, 1 << 20);
    d.int_field(n, "max_body_bytes", p, s.max_body_bytes, 1, 1LL << 32);
    d.duration_field(n, "header_timeout", p, s.header_timeout);
    d.duration_field(n, "body_timeout", p, s.body_timeout);
    d.duration_field(n, "idle_timeout", p, s.idle_timeout);
    d.duration_field(n, "write_timeout", p, s.write_timeout);
    d.duration_field(n, "drain_timeout", p, s.drain_timeout, true);
    d.int_field(n, "max_connections", p, s.max_connections, 1, 1000000);
    d.int_field(n, "max_requests_per_connection", p, s.max_requests_per_connection, 1, 1LL << 30);
    d.bool_field(n, "allow_unauthenticated", p, s.allow_unauthenticated);
}

void decode_log(Decoder& d, const YAML::Node& n, LogConfig& l) {
    const std::string p = "log";
    if (!d.is_map(n, p)) {
        return;
    }
    d.check_keys(n, p, {"level", "format", "access_log", "queue_lines"});
    d.string_field(n, "level", p, l.level);
    d.int_field(n, "queue_lines", p, l.queue_lines, 1, 1 << 24);
    d.string_field(n, "format", p, l.format);
    d.bool_field(n, "access_log", p, l.access_log);
    static const std::set<std::string> kLevels = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};
    if (!kLevels.count(l.level)) {
        d.error(p + ".level", n["level"], "expected one of trace, debug, info, warn, error, critical, off");
    }
    if (l.format != "text" && l.format != "json") {
        d.error(p + ".format", n["format"], "expected text or json");
    }
}

void decode_provider(Decoder& d, const std::string& name, const YAML::Node& key, const YAML::Node& n,
                     ProviderConfig& pc) {
    const std::string p = "providers." + name;
    pc.name = name;
    pc.yaml_line = Decoder::line_of(key);
    if (!d.is_map(n, p)) {
        return;
    }
    d.check_keys(n, p,
                 {"kind",
                  "base_url",
                  "api_key",
                  "api_version",
                  "default_max_tokens",
                  "region",
                  "ca_file",
                  "connect_timeout",
                  "first_byte_timeout",
                  "first_token_timeout",
                  "idle_timeout",
                  "request_timeout",
                  "pool_idle_timeout",
                  "health_check",
                  "max_connections",
                  "max_response_bytes",
                  "headers",
                  "models",
                  "embedding_dimensions",
                  "drop_unsupported_params"});
    d.string_field(n, "kind", p, pc.kind);
    d.string_field(n, "base_url", p, pc.base_url);
    if (n["api_key"]) {
        pc.api_key_set = true;
        d.string_field(n, "api_key", p, pc.api_key);
    }
    d.string_field(n, "api_version", p, pc.api_version);
    d.string_field(n, "region", p, pc.region);
    d.int_field(n, "default_max_tokens", p, pc.default_max_tokens, 1, 1000000);
    d.string_field(n, "ca_file", p, pc.ca_file);
    d.bool_field(n, "drop_unsupported_params", p, pc.drop_unsupported_params);
    d.duration_field(n, "connect_timeout", p, pc.connect_timeout);
    d.duration_field(n, "first_byte_timeout", p, pc.first_byte_timeout);
    d.duration_field(n, "idle_timeout", p, pc.idle_timeout);
    d.duration_field(n, "request_timeout", p, pc.request_timeout);
    d.duration_field(n, "first_token_timeout", p, pc.first_token_timeout, true);
    if (const auto h = n["health_check"]) {
        const std::string hp = p + ".health_check";
        if (d.is_map(h, hp)) {
            d.check_keys(h, hp, {"interval", "timeout", "unhealthy_after", "healthy_after"});
            pc.health_interval = Duration(10000);
            d.duration_field(h, "interval", hp, pc.health_interval);
            d.duration_field(h, "timeout", hp, pc.health_timeout);
            d.int_field(h, "unhealthy_after", hp, pc.health_unhealthy_after, 1, 100);
            d.int_field(h, "healthy_after", hp, pc.health_healthy_after, 1, 100);
        }
    }
    d.duration_field(n, "pool_idle_timeout", p, pc.pool_idle_timeout);
    d.int_field(n, "max_connections", p, pc.max_connections, 1, 100000);
    d.int_field(n, "max_response_bytes", p, pc.max_response_bytes, 1024, 1LL << 32);
    if (const auto h = n["headers"]) {
        if (d.is_map(h, p + ".headers")) {
            for (const auto& kv : h) {
                const std::string hp = p + ".headers." + kv.first.Scalar();
                if (auto v = d.scalar(kv.second, hp)) {
                    // A header goes upstream as written: no way to smuggle a second line.
                    if (!valid_header_name(kv.first.Scalar())) {
                        d.error(hp, kv.first, "not a valid HTTP header name");
                    } else if (!valid_header_value(*v)) {
                        d.error(hp, kv.second, "header values may not contain CR, LF or NUL");
                    } else {
                        pc.headers[kv.first.Scalar()] = *v;
                    }
                }
            }
        }
    }
    d.string_list(n, "models", p, pc.mock_models);
    d.int_field(n, "embedding_dimensions", p, pc.mock_embedding_dimensions, 1, 8192);

    const ProviderKind* kind = find_provider_kind(pc.kind);
    if (pc.kind.empty()) {
        d.error(p + ".kind", n, "missing (expected one of: " + provider_kind_names() + ")");
    } else if (kind == nullptr) {
        d.error(p + ".kind", n["kind"],
                "unknown provider kind '" + pc.kind + "' (expected one of: " + provider_kind_names() + ")");
    }
    if (kind != nullptr) {
        ProviderKeysPresent keys;
        keys.api_key = static_cast<bool>(n["api_key"]);
        keys.api_version = static_cast<bool>(n["api_version"]);
        keys.region = static_cast<bool>(n["region"]);
        keys.base_url = static_cast<bool>(n["base_url"]);
        keys.default_max_tokens = static_cast<bool>(n["default_max_tokens"]);
        keys.health_check = n["health_check"] && n["health_check"].IsMap();
        keys.mock_fields = n["models"] || n["embedding_dimensions"];
        for (const auto& issue : check_provider_config(*kind, pc, keys)) {
            const std::string path = issue.key.empty() ? p : p + "." + issue.key;
            d.error(path, issue.present && !issue.key.empty() ? n[issue.key] : n, issue.message);
        }
    }
    if (!pc.ca_file.empty()) {
        std::ifstream f(pc.ca_file);
        if (!f) {
            d.error(p + ".ca_file", n["ca_file"], "cannot read '" + pc.ca_file + "'");
        }
    }
}

void decode_timeouts(Decoder& d, const YAML::Node& n, const std::string& p, TimeoutOverrides& t,
                     Duration* total) {
    if (!d.is_map(n, p)) {
        return;
    }
    if (total != nullptr) {
        d.check_keys(n, p, {"total", "connect", "first_byte", "first_token", "idle"});
        d.duration_field(n, "total", p, *total);
    } else {
        d.check_keys(n, p, {"connect", "first_byte", "first_token", "idle"});
    }
    d.optional_duration(n, "connect", p, t.connect);
    d.optional_duration(n, "first_byte", p, t.first_byte);
    d.optional_duration(n, "first_token", p, t.first_token, true);
    d.optional_duration(n, "idle", p, t.idle);
}

void decode_breaker(Decoder& d, const YAML::Node& n, const std::string& p, BreakerConfig& b) {
    if (!d.is_map(n, p)) {
        return;
    }
    d.check_keys(n, p,
                 {"enabled", "consecutive_failures", "error_ratio", "window", "min_requests", "cooldown"});
    d.bool_field(n, "enabled", p, b.enabled);
    d.int_field(n, "consecutive_failures", p, b.consecutive_failures, 0, 1000000);
    d.double_field(n, "error_ratio", p, b.error_ratio, 0.0, 1.0);
    d.duration_field(n, "window", p, b.window);
    d.int_field(n, "min_requests", p, b.min_requests, 1, 1000000);
    d.duration_field(n, "cooldown", p, b.cooldown);
    if (b.enabled && b.consecutive_failures == 0 && b.error_ratio == 0.0) {
        d.error(p, n, "consecutive_failures and error_ratio are both 0: set enabled: false instead");
    }
}

void decode_retries(Decoder& d, const YAML::Node& n, const std::string& p, RetryConfig& r) {
    if (!d.is_map(n, p)) {
        return;
    }
    d.check_keys(n, p, {"attempts", "backoff_base", "backoff_cap", "retry_after_cap", "on"});
    d.int_field(n, "attempts", p, r.attempts, 1, 20);
    d.duration_field(n, "backoff_base", p, r.backoff_base, true);
    d.duration_field(n, "backoff_cap", p, r.backoff_cap, true);
    d.duration_field(n, "retry_after_cap", p, r.retry_after_cap, true);
    if (r.backoff_cap < r.backoff_base) {
        d.error(p + ".backoff_cap", n, "is below backoff_base");
    }
    if (!n["on"]) {
        return;
    }
    std::vector<std::string> conditions;
    d.string_list(n, "on", p, conditions);
    r.on_connect_error = r.on_timeout = r.on_reset = false;
    r.on_status.clear();
    for (std::size_t i = 0; i < conditions.size(); ++i) {
        const std::string& c = conditions[i];
        if (c == "connect_error") {
            r.on_connect_error = true;
        } else if (c == "timeout") {
            r.on_timeout = true;
        } else if (c == "reset") {
            r.on_reset = true;
        } else if (c.size() == 3 &&
                   std::all_of(c.begin(), c.end(),
                               [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)) != 0; }) &&
                   (c[0] == '4' || c[0] == '5')) {
            r.on_status.push_back(std::stoi(c));
        } else {
            d.error(
                p + ".on[" + std::to_string(i) + "]", n["on"][i],
                "unknown condition '" + c + "' (expected connect_error, timeout, reset or a 4xx/5xx status)");
        }
    }
}

void decode_route(Decoder& d, std::size_t index, const YAML::Node& n, RouteConfig& rc) {
    const std::string p = "routes[" + std::to_string(index) + "]";
    rc.yaml_line = Decoder::line_of(n);
    if (!d.is_map(n, p)) {
        return;
    }
    d.check_keys(n, p,
                 {"name", "model", "strategy", "targets", "retries", "breaker", "timeouts", "least_latency",
                  "fallbacks", "fallback_on"});
    d.string_field(n, "name", p, rc.name);
    d.string_field(n, "model", p, rc.model);
    if (n["model"] && rc.model.empty()) {
        d.error(p + ".model", n["model"], "is empty");
    }
    if (rc.model.empty() && rc.name.empty()) {
        d.error(p, n, "needs a model (the names it serves) or a name (a fallback-only route)");
    }
    if (rc.name.empty()) {
        rc.name = rc.model;
    }
    d.string_field(n, "strategy", p, rc.strategy);
    if (rc.strategy != "weighted" && rc.strategy != "fallback" && rc.strategy != "least_latency" &&
        rc.strategy != "least_busy") {
        d.error(p + ".strategy", n["strategy"],
                "unknown strategy '" + rc.strategy +
                    "' (expected weighted, fallback, least_latency or least_busy)");
    }
    if (const auto r = n["retries"]) {
        decode_retries(d, r, p + ".retries", rc.retries);
    }
    if (const auto b = n["breaker"]) {
        decode_breaker(d, b, p + ".breaker", rc.breaker);
    }
    if (const auto t = n["timeouts"]) {
        decode_timeouts(d, t, p + ".timeouts", rc.timeouts, &rc.total_timeout);
    }
    if (const auto l = n["least_latency"]) {
        const std::string lp = p + ".least_latency";
        if (d.is_map(l, lp)) {
            d.check_keys(l, lp, {"band", "explore"});
            d.double_field(l, "band", lp, rc.latency_band, 0.0, 10.0);
            d.double_field(l, "explore", lp, rc.latency_explore, 0.0, 1.0);
        }
        if (rc.strategy != "least_latency") {
            d.error(lp, l, "only applies to strategy: least_latency");
        }
    }
    d.string_list(n, "fallbacks", p, rc.fallbacks);
    if (const auto f = n["fallback_on"]) {
        const std::string fp = p + ".fallback_on";
        if (d.is_map(f, fp)) {
            d.check_keys(f, fp, {"context_length_exceeded", "content_policy"});
            for (const char* cls : {"context_length_exceeded", "content_policy"}) {
                if (!f[cls]) {
                    continue;
                }
                std::vector<std::string> names;
                if (f[cls].IsScalar()) {
                    if (auto v = d.scalar(f[cls], fp + "." + cls)) {
                        names.push_back(*v);
                    }
                } else {
                    d.string_list(f, cls, fp, names);
                }
                rc.fallback_on.emplace_back(cls, std::move(names));
            }
        }
    }
    const auto t = n["targets"];
    if (!t || !t.IsSequence() || t.size() == 0) {
        d.error(p + ".targets", t ? t : n, "expected a non-empty list of targets");
        return;
    }
    for (std::size_t i = 0; i < t.size(); ++i) {
        const std::string tp = p + ".targets[" + std::to_string(i) + "]";
        TargetConfig tc;
        tc.yaml_line = Decoder::line_of(t[i]);
        if (!d.is_map(t[i], tp)) {
            continue;
        }
        d.check_keys(t[i], tp, {"provider", "model", "weight", "timeouts", "breaker"});
        d.string_field(t[i], "provider", tp, tc.provider);
        d.string_field(t[i], "model", tp, tc.model);
        d.int_field(t[i], "weight", tp, tc.weight, 0, 1000000);
        if (const auto to = t[i]["timeouts"]) {
            decode_timeouts(d, to, tp + ".timeouts", tc.timeouts, nullptr);
        }
        if (const auto b = t[i]["breaker"]) {
            BreakerConfig bc = rc.breaker;  // the route's settings, then the target's keys
            decode_breaker(d, b, tp + ".breaker", bc);
            tc.breaker = bc;
        }
        if (tc.provider.empty()) {
            d.error(tp + ".provider", t[i], "missing");
        }
        rc.targets.push_back(std::move(tc));
    }
}

bool is_hex64(const std::string& s) {
    if (s.size() != 64) {
        return false;
    }
    for (const char c : s) {
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

void decode_key(Decoder& d, std::size_t index, const YAML::Node& n, KeyConfig& kc) {
    const std::string p = "keys[" + std::to_string(index) + "]";
    kc.yaml_line = Decoder::line_of(n);
    if (!d.is_map(n, p)) {
        return;
    }
    d.check_keys(n, p, {"name", "key", "sha256", "models"});
    d.string_field(n, "name", p, kc.name);
    d.string_field(n, "key", p, kc.key);
    d.string_field(n, "sha256", p, kc.sha256_hex);
    d.string_list(n, "models", p, kc.models);
    if (kc.name.empty()) {
        d.error(p + ".name", n, "missing or empty");
    }
    if (n["key"] && n["sha256"]) {
        d.error(p, n, "give either key or sha256, not both");
    } else if (!n["key"] && !n["sha256"]) {
        d.error(p, n, "missing key (or sha256)");
    } else if (n["key"] && kc.key.empty()) {
        d.error(p + ".key", n["key"], "is empty after substitution (is its environment variable set?)");
    } else if (n["sha256"]) {
        for (auto& c : kc.sha256_hex) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        if (!is_hex64(kc.sha256_hex)) {
            d.error(p + ".sha256", n["sha256"], "expected 64 hex digits (a SHA-256 digest)");
        }
    }
}

void cross_check(Decoder& d, const YAML::Node& root, GatewayConfig& cfg) {
    std::set<std::string> providers;
    for (const auto& pc : cfg.providers) {
        providers.insert(pc.name);
    }
    for (std::size_t r = 0; r < cfg.routes.size(); ++r) {
        const auto& rc = cfg.routes[r];
        unsigned long total = 0;
        for (std::size_t i = 0; i < rc.targets.size(); ++i) {
            const auto& tc = rc.targets[i];
            total += tc.weight;
            if (!tc.provider.empty() && !providers.count(tc.provider)) {
                d.error("routes[" + std::to_string(r) + "].targets[" + std::to_string(i) + "].provider",
                        root["routes"][r]["targets"][i]["provider"],
                        "no provider named '" + tc.provider + "'");
            }
        }
        if (!rc.targets.empty() && total == 0) {
            d.error("routes[" + std::to_string(r) + "].targets", root["routes"][r]["targets"],
                    "at least one target needs a weight above 0");
        }
    }
    std::set<std::string> route_names;
    for (std::size_t r = 0; r < cfg.routes.size(); ++r) {
        const auto& rc = cfg.routes[r];
        if (!rc.name.empty() && !route_names.insert(rc.name).second) {
            d.error("routes[" + std::to_string(r) + "].name", root["routes"][r],
                    "duplicate route name '" + rc.name +
                        "' (routes are named by their model unless name is set)");
        }
    }
    for (std::size_t r = 0; r < cfg.routes.size(); ++r) {
        const auto& rc = cfg.routes[r];
        const std::string p = "routes[" + std::to_string(r) + "]";
        auto check = [&](const std::string& name, const std::string& path, const YAML::Node& at) {
            if (name == rc.name) {
                d.error(path, at, "a route cannot fall back to itself");
            } else if (!route_names.count(name)) {
                d.error(path, at, "no route named '" + name + "'");
            }
        };
        for (std::size_t i = 0; i < rc.fallbacks.size(); ++i) {
            check(rc.fallbacks[i], p + ".fallbacks[" + std::to_string(i) + "]",
                  root["routes"][r]["fallbacks"]);
        }
        for (const auto& [cls, names] : rc.fallback_on) {
            for (const auto& name : names) {
                check(name, p + ".fallback_on." + cls, root["routes"][r]["fallback_on"]);
            }
        }
    }
    std::set<std::string> names;
    for (std::size_t k = 0; k < cfg.keys.size(); ++k) {
        if (!cfg.keys[k].name.empty() && !names.insert(cfg.keys[k].name).second) {
            d.error("keys[" + std::to_string(k) + "].name", root["keys"][k]["name"],
                    "duplicate key name '" + cfg.keys[k].name + "'");
        }
    }
    if (cfg.routes.empty()) {
        d.warnings.emplace_back("no routes configured: every model request will answer 404");
    }
}

GatewayConfig decode(const std::string& text, const std::map<std::string, std::string>* env) {
    if (text.size() > kMaxConfigBytes) {
        throw ConfigError({"config: file larger than 4 MiB"});
    }
    if (!nesting_is_sane(text)) {
        throw ConfigError({"config: nesting deeper than any sluice config allows"});
    }
    YAML::Node root;
    try {
        root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
        throw ConfigError({"config (line " + std::to_string(e.mark.line + 1) + "): invalid YAML: " + e.msg});
    }
    GatewayConfig cfg;
    Decoder d(env);
    if (!root || root.IsNull()) {
        throw ConfigError({"config: the file is empty"});
    }
    if (!root.IsMap()) {
        throw ConfigError({"config (line " + std::to_string(Decoder::line_of(root)) +
                           "): the top level must be a mapping"});
    }
    d.check_keys(root, "config", {"server", "log", "providers", "routes", "keys"});
    if (const auto s = root["server"]) {
        decode_server(d, s, cfg.server);
    }
    if (const auto l = root["log"]) {
        decode_log(d, l, cfg.log);
    }
    if (const auto ps = root["providers"]) {
        if (d.is_map(ps, "providers")) {
            std::set<std::string> seen;
            for (const auto& kv : ps) {
                const auto name = kv.first.Scalar();
                if (!seen.insert(name).second) {
                    d.error("providers." + name, kv.first, "duplicate provider name");
                    continue;
                }
                ProviderConfig pc;
                decode_provider(d, name, kv.first, kv.second, pc);
                cfg.providers.push_back(std::move(pc));
            }
        }
    }
    if (const auto rs = root["routes"]) {
        if (!rs.IsSequence()) {
            d.error("routes", rs, "expected a list of routes");
        } else {
            for (std::size_t i = 0; i < rs.size(); ++i) {
                RouteConfig rc;
                decode_route(d, i, rs[i], rc);
                cfg.routes.push_back(std::move(rc));
            }
        }
    }
    if (const auto ks = root["keys"]) {
        if (!ks.IsSequence()) {
            d.error("keys", ks, "expected a list of keys");
        } else {
            for (std::size_t i = 0; i < ks.size(); ++i) {
                KeyConfig kc;
                decode_key(d, i, ks[i], kc);
                cfg.keys.push_back(std::move(kc));
            }
        }
    }
    if (d.errors.empty()) {
        cross_check(d, root, cfg);
    }
    if (!d.errors.empty()) {
        throw ConfigError(std::move(d.errors));
    }
    cfg.warnings = std::move(d.warnings);
    return cfg;
}

}  // namespace

const std::vector<ProviderPreset>& provider_presets() {
    static const std::vector<ProviderPreset> kPresets = {
        {"groq", "https://api.groq.com/openai/v1", true},
        {"together", "https://api.together.xyz/v1", true},
        {"mistral", "https://api.mistral.ai/v1", true},
        {"deepseek", "https://api.deepseek.com/v1", true},
        {"fireworks", "https://api.fireworks.ai/inference/v1", true},
        {"openrouter", "https://openrouter.ai/api/v1", true},
        {"xai", "https://api.x.ai/v1", true},
        {"ollama", "http://127.0.0.1:11434/v1", false},
        {"vllm", "http://127.0.0.1:8000/v1", false},
    };
    return kPresets;
}

const ProviderPreset* find_preset(std::string_view kind) noexcept {
    for (const auto& p : provider_presets()) {
        if (kind == p.kind) {
            return &p;
        }
    }
    return nullptr;
}

ConfigError::ConfigError(std::vector<std::string> errors)
    : std::runtime_error(join_lines(errors)), errors_(std::move(errors)) {}

std::optional<Duration> parse_duration(std::string_view text) {
    if (text == "0") {
        return Duration{0};
    }
    std::size_t i = 0;
    std::uint64_t value = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
        if (value > 100000000000ULL) {
            return std::nullopt;
        }
        ++i;
    }
    if (i == 0) {
        return std::nullopt;
    }
    const auto unit = text.substr(i);
    std::uint64_t ms = 0;
    if (unit == "ms") {
        ms = value;
    } else if (unit == "s") {
        ms = value * 1000;
    } else if (unit == "m") {
        ms = value * 60 * 1000;
    } else if (unit == "h") {
        ms = value * 3600 * 1000;
    } else {
        return std::nullopt;
    }
    return Duration{static_cast<Duration::rep>(ms)};
}

GatewayConfig load_config_text(const std::string& text, const std::map<std::string, std::string>* env) {
    return decode(text, env);
}

GatewayConfig load_config_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw ConfigError({path + ": cannot open the config file"});
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    try {
        return decode(ss.str(), nullptr);
    } catch (const ConfigError& e) {
        std::vector<std::string> prefixed;
        for (const auto& m : e.errors()) {
            prefixed.push_back(path + ": " + m);
        }
        throw ConfigError(std::move(prefixed));
    }
}

}  // namespace sluice
