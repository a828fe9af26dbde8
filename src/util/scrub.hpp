#pragma once

#include <span>
#include <string>
#include <string_view>

namespace sluice {

/// Removes secrets from text that came from a provider before it reaches a client or a log:
/// the provider's own key wherever it appears, `sk-…`-style keys, bearer tokens, and `key=` /
/// `api_key=` query parameters. Also caps the length.
std::string scrub_secrets(std::string_view text, std::string_view known_secret, std::size_t max_len = 1024);
/// Same, masking each of `known_secrets` (empty and very short ones are ignored). The cap never
/// cuts a UTF-8 sequence.
std::string scrub_secrets(std::string_view text, std::span<const std::string> known_secrets,
                          std::size_t max_len = 1024);

}  // namespace sluice
