#pragma once

// The dialect-neutral view of a non-stream answer (sluice/filter.hpp: ResponseBody) that body
// filters read and rewrite: built from the client's JSON (an OpenAI chat completion or an
// Anthropic message), and written back only where a filter changed a part.

#include <optional>
#include <string>
#include <vector>

#include <sluice/filter.hpp>

namespace sluice {

/// Runs `filters` (each has the response_body hook) over `body`, the answer in the client's
/// dialect. A body that is not a JSON object is refused (502): a filter is never bypassed.
std::optional<GatewayError> filter_response_body(const std::vector<const Filter*>& filters,
                                                 const RequestContext& ctx, std::string& body);

}  // namespace sluice
