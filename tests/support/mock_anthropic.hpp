#pragma once

#include <string_view>

#include "providers/mock_provider.hpp"

namespace sluice::test {

/// A deterministic answer in Anthropic's Messages wire format (JSON, or the full SSE event
/// sequence when "stream" is true), with the API's own checks: max_tokens required, unknown
/// top-level fields rejected, roles alternating from "user".
LocalResponse anthropic_generate(std::string_view body);

}  // namespace sluice::test
