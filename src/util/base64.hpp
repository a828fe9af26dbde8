#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace sluice {

/// Standard base64 (RFC 4648, with padding).
std::string base64_encode(const unsigned char* data, std::size_t n);
/// OpenAI's `encoding_format: base64` for embeddings: little-endian float32 values, base64.
std::string base64_floats(const std::vector<float>& values);

}  // namespace sluice
