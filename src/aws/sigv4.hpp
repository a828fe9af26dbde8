#pragma once

// AWS Signature Version 4 (HMAC-SHA256 with OpenSSL), for Bedrock. Pure: no clock, no I/O.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::aws {

struct Credentials {
    std::string access_key;
    std::string secret_key;
    std::string session_token;  ///< temporary credentials; empty when not used
};

struct SignRequest {
    std::string method;
    std::string path;   ///< as sent on the wire (each segment URI-encoded once), e.g. /model/x%3A0/converse
    std::string query;  ///< canonical query string (sorted, encoded), empty when none
    std::vector<std::pair<std::string, std::string>> headers;  ///< must include host and x-amz-date
    std::string payload;
};

struct Signature {
    std::string canonical_request;
    std::string string_to_sign;
    std::string signature;      ///< hex
    std::string authorization;  ///< the Authorization header value
};

/// Signs `req`. `amz_date` is the request time as YYYYMMDD'T'HHMMSS'Z' (also in x-amz-date).
/// Every header in `req.headers` is signed. For every service but s3 the path segments are
/// encoded a second time in the canonical request, as SigV4 requires.
Signature sign(const SignRequest& req, const Credentials& creds, std::string_view region,
               std::string_view service, std::string_view amz_date);

}  // namespace sluice::aws
