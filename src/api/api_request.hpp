#pragma once

#include <optional>
#include <string>

#include <sluice/error.hpp>
#include <sluice/provider.hpp>

namespace sluice {

/// The longest model name a client may send.
inline constexpr std::size_t kMaxModelNameBytes = 256;

/// Validates a client's JSON body for `endpoint` and fills `out` (which takes the body).
/// Errors: 400 invalid_json (syntax, UTF-8, depth), duplicate_key (a top-level key twice: the
/// value authorized must be the value forwarded), invalid_parameter / missing model.
std::optional<GatewayError> parse_api_request(Endpoint endpoint, std::string body, ApiRequest& out);

/// Usage from a JSON object text such as {"prompt_tokens":1,"completion_tokens":2,...}. False
/// when a token count is present but not a non-negative integer (a provider answer to refuse).
bool parse_usage_object(std::string_view object, Usage& out);

}  // namespace sluice
