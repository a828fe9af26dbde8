#pragma once

// The only ways sluice turns untrusted text into a nlohmann DOM and a DOM back into text.
//
// nlohmann's parser has no depth limit, and its dump(), copy constructor and comparisons recurse
// once per nesting level: a document nested 150,000 deep (a tool call's `arguments` string, a
// provider's answer) overflows a worker's stack. parse_untrusted() validates with the scanner
// first (depth 64, a cap on the number of values, UTF-8), so every DOM sluice holds is shallow
// and bounded. to_text() never throws: dump() throws on invalid UTF-8, which a string cut at a
// byte limit can contain; it writes U+FFFD instead.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "json/json_scan.hpp"

namespace sluice::json {

using Json = nlohmann::json;

/// Parses `text` into `out` when it is one valid JSON value within `limits`. On failure `out`
/// is left discarded and `error` (when non-null) says why.
bool parse_untrusted(std::string_view text, Json& out, ScanError* error = nullptr,
                     const ScanLimits& limits = {});

/// The compact JSON text of `j`; invalid UTF-8 in strings becomes U+FFFD. Never throws.
std::string to_text(const Json& j);
/// Appends the compact JSON text of `j` to `out`.
void append_text(std::string& out, const Json& j);

}  // namespace sluice::json
