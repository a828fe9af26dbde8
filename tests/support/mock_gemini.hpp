#pragma once

#include <string_view>

#include "providers/mock_provider.hpp"

namespace sluice::test {

/// A deterministic answer in Gemini's wire format for `path` (after /v1beta):
/// /models/{m}:generateContent, /models/{m}:streamGenerateContent (SSE with CRLF delimiters),
/// /models/{m}:batchEmbedContents, /models (GET). Like Gemini 3 it rejects a functionCall in the
/// history that lost its thoughtSignature.
LocalResponse gemini_generate(std::string_view path, std::string_view body);

}  // namespace sluice::test
