#pragma once

// A validating single-pass JSON scanner. sluice forwards OpenAI-format bodies as the client sent
// them (unknown fields pass untouched), so it never needs a DOM on the hot path: it validates the
// whole text (RFC 8259, UTF-8, no lone surrogates, depth-capped), lists the top-level members
// with their raw spans, and splices the few it rewrites.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::json {

enum class Kind : char {
    object,
    array,
    string,
    number,
    boolean,
    null
};

struct Member {
    std::string_view raw_key;  ///< the key between its quotes, escapes intact
    std::string_view value;    ///< the value's raw text
    Kind kind = Kind::null;
    std::size_t begin = 0;  ///< offset of the key's opening quote in the scanned text
    std::size_t end = 0;    ///< offset one past the value

    /// Compares the decoded key with `name` (keys may be spelled with escapes: "mod\u0065l").
    bool key_is(std::string_view name) const;
};

struct ScanError {
    std::size_t offset = 0;
    std::string message;
};

inline constexpr int kDefaultMaxDepth = 64;
/// Values (of any type, containers included) one document may hold. Bounds the DOM a client or
/// a provider can make sluice build: a nlohmann node costs 16 to ~100 bytes.
inline constexpr std::size_t kDefaultMaxValues = 1000000;

struct ScanLimits {
    int max_depth = kDefaultMaxDepth;
    std::size_t max_values = kDefaultMaxValues;
};

/// Validates `text` as one complete JSON value. When the value is an object and `members` is
/// non-null, its top-level members are appended in order.
bool scan(std::string_view text, std::vector<Member>* members, ScanError& err,
          int max_depth = kDefaultMaxDepth);
/// Same, with a cap on the number of values too.
bool scan(std::string_view text, std::vector<Member>* members, ScanError& err, const ScanLimits& limits);

/// Decodes the contents of a JSON string (the part between the quotes). Input must be valid.
std::string unescape(std::string_view raw);
/// The decoded value of a string value span (with quotes); nullopt when not a string.
std::optional<std::string> string_value(std::string_view value);
/// An integer value span; nullopt when not an integer that fits int64.
std::optional<std::int64_t> int_value(std::string_view value);

/// Finds a member by decoded key; nullptr when absent.
const Member* find(const std::vector<Member>& members, std::string_view name);

}  // namespace sluice::json
