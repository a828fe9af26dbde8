#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "providers/mock_provider.hpp"

namespace sluice::test {

/// Bedrock Converse / ConverseStream in their wire formats (JSON; binary event-stream), for
/// /model/{id}/converse and /model/{id}/converse-stream. The request's SigV4 signature is checked
/// with the test credentials (AKIDMOCK / mock-secret): a wrong signature gets Bedrock's 403.
/// `fault` "bad_crc" corrupts the second frame; "throttle" sends a throttlingException mid-stream.
LocalResponse bedrock_generate(std::string_view method, std::string_view path,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               std::string_view body);

constexpr const char* kMockAwsAccessKey = "AKIDMOCK";
constexpr const char* kMockAwsSecret = "mock-secret";

}  // namespace sluice::test
