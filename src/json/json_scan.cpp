#include "json/json_scan.hpp"

#include <charconv>
#include <cstdint>
#include <cstring>

#include "util/bytes.hpp"

namespace sluice::json {

namespace {

class Scanner {
public:
    Scanner(std::string_view text, const ScanLimits& limits, ScanError& err)
        : s_(text), max_depth_(limits.max_depth), max_values_(limits.max_values), err_(err) {}

    bool run(std::vector<Member>* members) {
        if (members != nullptr && members->capacity() < kTypicalMembers) {
            members->reserve(kTypicalMembers);  // one allocation for a typical body, not five
        }
        ws();
        if (!value(0, members)) {
            return false;
        }
        ws();
        if (p_ != s_.size()) {
            return fail("unexpected data after the JSON value");
        }
        return true;
    }

private:
    static constexpr std::size_t kTypicalMembers = 8;

    bool fail(const char* msg) {
        err_.offset = p_;
        err_.message = msg;
        return false;
    }

    void ws() {
        while (p_ < s_.size()) {
            const char c = s_[p_];
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                break;
            }
            ++p_;
        }
    }

    bool literal(const char* word) {
        const std::size_t n = std::strlen(word);
        if (s_.compare(p_, n, word) != 0) {
            return fail("invalid literal");
        }
        p_ += n;
        return true;
    }

    bool value(int depth, std::vector<Member>* members) {
        if (p_ >= s_.size()) {
            return fail("unexpected end of JSON");
        }
        if (++values_ > max_values_) {
            return fail("JSON has too many values");
        }
        switch (s_[p_]) {
            case '{': return object(depth + 1, members);
            case '[': return array(depth + 1);
            case '"': return string();
            case 't': return literal("true");
            case 'f': return literal("false");
            case 'n': return literal("null");
            default: return number();
        }
    }

    bool object(int depth, std::vector<Member>* members) {
        if (depth > max_depth_) {
            return fail("JSON nested too deeply");
        }
        ++p_;  // {
        ws();
        if (p_ < s_.size() && s_[p_] == '}') {
            ++p_;
            return true;
        }
        while (true) {
            ws();
            if (p_ >= s_.size() || s_[p_] != '"') {
                return fail("expected a string key");
            }
            const std::size_t key_begin = p_;
            if (!string()) {
                return false;
            }
            const std::size_t key_end = p_;
            ws();
            if (p_ >= s_.size() || s_[p_] != ':') {
                return fail("expected ':' after a key");
            }
            ++p_;
            ws();
            const std::size_t value_begin = p_;
            const char first = p_ < s_.size() ? s_[p_] : '\0';
            if (!value(depth, nullptr)) {
                return false;
            }
            if (members != nullptr) {
                Member m;
                m.raw_key = s_.substr(key_begin + 1, key_end - key_begin - 2);
                m.value = s_.substr(value_begin, p_ - value_begin);
                m.begin = key_begin;
                m.end = p_;
                switch (first) {
                    case '{': m.kind = Kind::object; break;
                    case '[': m.kind = Kind::array; break;
                    case '"': m.kind = Kind::string; break;
                    case 't':
                    case 'f': m.kind = Kind::boolean; break;
                    case 'n': m.kind = Kind::null; break;
                    default: m.kind = Kind::number;
                }
                members->push_back(m);
            }
            ws();
            if (p_ >= s_.size()) {
                return fail("unexpected end of JSON in an object");
            }
            if (s_[p_] == ',') {
                ++p_;
                continue;
            }
            if (s_[p_] == '}') {
                ++p_;
                return true;
            }
            return fail("expected ',' or '}' in an object");
        }
    }

    bool array(int depth) {
        if (depth > max_depth_) {
            return fail("JSON nested too deeply");
        }
        ++p_;  // [
        ws();
        if (p_ < s_.size() && s_[p_] == ']') {
            ++p_;
            return true;
        }
        while (true) {
            ws();
            if (!value(depth, nullptr)) {
                return false;
            }
            ws();
            if (p_ >= s_.size()) {
                return fail("unexpected end of JSON in an array");
            }
            if (s_[p_] == ',') {
                ++p_;
                continue;
            }
            if (s_[p_] == ']') {
                ++p_;
                return true;
            }
            return fail("expected ',' or ']' in an array");
        }
    }

    static int hex(char c) {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    }

    bool read_u16(unsigned& out) {
        if (p_ + 4 > s_.size()) {
            return fail("truncated \\u escape");
        }
        out = 0;
        for (int i = 0; i < 4; ++i) {
            const int h = hex(s_[p_ + static_cast<std::size_t>(i)]);
            if (h < 0) {
                return fail("invalid \\u escape");
            }
            out = out * 16 + static_cast<unsigned>(h);
        }
        p_ += 4;
        return true;
    }

    /// Skips runs of 8 plain ASCII bytes (no quote, backslash, control or non-ASCII byte) at a
    /// time; the byte loop below handles everything else.
    void skip_plain_ascii() { p_ = bytes::find_json_string_special(s_, p_); }

    bool string() {
        ++p_;  // opening quote
        while (p_ < s_.size()) {
            skip_plain_ascii();
            if (p_ >= s_.size()) {
                break;
            }
            const auto c = static_cast<unsigned char>(s_[p_]);
            if (c == '"') {
                ++p_;
                return true;
            }
            if (c == '\\') {
                ++p_;
                if (p_ >= s_.size()) {
                    break;
                }
                const char e = s_[p_++];
                if (e == 'u') {
                    unsigned cp = 0;
                    if (!read_u16(cp)) {
                        return false;
                    }
                    if (cp >= 0xD800 && cp <= 0xDBFF) {
                        unsigned lo = 0;
                        if (p_ + 1 >= s_.size() || s_[p_] != '\\' || s_[p_ + 1] != 'u') {
                            return fail("lone surrogate in a \\u escape");
                        }
                        p_ += 2;
                        if (!read_u16(lo)) {
                            return false;
                        }
                        if (lo < 0xDC00 || lo > 0xDFFF) {
                            return fail("lone surrogate in a \\u escape");
                        }
                    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                        return fail("lone surrogate in a \\u escape");
                    }
                } else if (std::strchr("\"\\/bfnrt", e) == nullptr || e == '\0') {
                    return fail("invalid escape in a string");
                }
                continue;
            }
            if (c < 0x20) {
                return fail("control character in a string");
            }
            if (c < 0x80) {
                ++p_;
                continue;
            }
            if (!utf8()) {
                return false;
            }
        }
        return fail("unterminated string");
    }

    bool utf8() {
        const auto c = static_cast<unsigned char>(s_[p_]);
        std::size_t n = 0;
        unsigned cp = 0;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return fail("invalid UTF-8");
        }
        if (p_ + n >= s_.size()) {
            return fail("invalid UTF-8");
        }
        for (std::size_t i = 1; i <= n; ++i) {
            const auto cc = static_cast<unsigned char>(s_[p_ + i]);
            if ((cc & 0xC0) != 0x80) {
                return fail("invalid UTF-8");
            }
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) {
            return fail("invalid UTF-8");
        }
        p_ += n + 1;
        return true;
    }

    bool number() {
        const std::size_t start = p_;
        if (p_ < s_.size() && s_[p_] == '-') {
            ++p_;
        }
        if (p_ >= s_.size()) {
            return fail("invalid number");
        }
        if (s_[p_] == '0') {
            ++p_;
        } else if (s_[p_] >= '1' && s_[p_] <= '9') {
            while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') {
                ++p_;
            }
        } else {
            p_ = start;
            return fail("invalid value");
        }
        if (p_ < s_.size() && s_[p_] == '.') {
            ++p_;
            const std::size_t d = p_;
            while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') {
                ++p_;
            }
            if (d == p_) {
                return fail("invalid number");
            }
        }
        if (p_ < s_.size() && (s_[p_] == 'e' || s_[p_] == 'E')) {
            ++p_;
            if (p_ < s_.size() && (s_[p_] == '+' || s_[p_] == '-')) {
                ++p_;
            }
            const std::size_t d = p_;
            while (p_ < s_.size() && s_[p_] >= '0' && s_[p_] <= '9') {
                ++p_;
            }
            if (d == p_) {
                return fail("invalid number");
            }
        }
        return true;
    }

    std::string_view s_;
    std::size_t p_ = 0;
    int max_depth_;
    std::size_t max_values_;
    std::size_t values_ = 0;
    ScanError& err_;
};

void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

unsigned parse_hex4(std::string_view s, std::size_t i) {
    unsigned v = 0;
    for (std::size_t k = 0; k < 4 && i + k < s.size(); ++k) {
        const char c = s[i + k];
        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= static_cast<unsigned>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= static_cast<unsigned>(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= static_cast<unsigned>(c - 'A' + 10);
        }
    }
    return v;
}

}  // namespace

bool scan(std::string_view text, std::vector<Member>* members, ScanError& err, int max_depth) {
    ScanLimits limits;
    limits.max_depth = max_depth;
    Scanner s(text, limits, err);
    return s.run(members);
}

bool scan(std::string_view text, std::vector<Member>* members, ScanError& err, const ScanLimits& limits) {
    Scanner s(text, limits, err);
    return s.run(members);
}

std::string unescape(std::string_view raw) {
    std::string out;
    out.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
        const char c = raw[i];
        if (c != '\\' || i + 1 >= raw.size()) {
            out.push_back(c);
            continue;
        }
        const char e = raw[++i];
        switch (e) {
            case 'b': out.push_back('\b'); break;
            case 'f': out.push_back('\f'); break;
            case 'n': out.push_back('\n'); break;
            case 'r': out.push_back('\r'); break;
            case 't': out.push_back('\t'); break;
            case 'u': {
                unsigned cp = parse_hex4(raw, i + 1);
                i += 4;
                if (cp >= 0xD800 && cp <= 0xDBFF && i + 6 < raw.size() && raw[i + 1] == '\\') {
                    const unsigned lo = parse_hex4(raw, i + 3);
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
                append_utf8(out, cp);
                break;
            }
            default: out.push_back(e);
        }
    }
    return out;
}

bool Member::key_is(std::string_view name) const {
    if (raw_key.find('\\') == std::string_view::npos) {
        return raw_key == name;
    }
    return unescape(raw_key) == name;
}

std::optional<std::string> string_value(std::string_view value) {
    if (value.size() < 2 || value.front() != '"' || value.back() != '"') {
        return std::nullopt;
    }
    const auto inner = value.substr(1, value.size() - 2);
    if (inner.find('\\') == std::string_view::npos) {
        return std::string(inner);
    }
    return unescape(inner);
}

std::optional<std::int64_t> int_value(std::string_view value) {
    std::int64_t v = 0;
    const auto* end = value.data() + value.size();
    const auto r = std::from_chars(value.data(), end, v);
    if (r.ec != std::errc{} || r.ptr != end) {
        return std::nullopt;
    }
    return v;
}

const Member* find(const std::vector<Member>& members, std::string_view name) {
    for (const auto& m : members) {
        if (m.key_is(name)) {
            return &m;
        }
    }
    return nullptr;
}

}  // namespace sluice::json
