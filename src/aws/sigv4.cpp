#include "aws/sigv4.hpp"

#include "util/strings.hpp"

#include <algorithm>
#include <cctype>

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace sluice::aws {

namespace {

std::string hex(const unsigned char* data, std::size_t n) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(kHex[data[i] >> 4]);
        out.push_back(kHex[data[i] & 0xF]);
    }
    return out;
}

std::string hmac(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

/// Trims and collapses runs of spaces, as the canonical header form requires.
std::string canonical_value(std::string_view v) {
    std::string out;
    bool space = false;
    for (const char c : v) {
        if (c == ' ' || c == '\t') {
            space = !out.empty();
            continue;
        }
        if (space) {
            out.push_back(' ');
            space = false;
        }
        out.push_back(c);
    }
    return out;
}

/// Encodes each segment of an already-encoded path once more (non-S3 services).
std::string double_encode_path(std::string_view path) {
    std::string out;
    std::size_t pos = 0;
    while (pos <= path.size()) {
        const auto slash = path.find('/', pos);
        const auto seg =
            path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
        out += uri_encode_segment(seg);
        if (slash == std::string_view::npos) {
            break;
        }
        out.push_back('/');
        pos = slash + 1;
    }
    return out;
}

}  // namespace

Signature sign(const SignRequest& req, const Credentials& creds, std::string_view region,
               std::string_view service, std::string_view amz_date) {
    std::vector<std::pair<std::string, std::string>> headers;
    headers.reserve(req.headers.size());
    for (const auto& [k, v] : req.headers) {
        headers.emplace_back(lower(k), canonical_value(v));
    }
    std::sort(headers.begin(), headers.end());
    std::string canonical_headers;
    std::string signed_headers;
    for (const auto& [k, v] : headers) {
        canonical_headers += k + ":" + v + "\n";
        signed_headers += (signed_headers.empty() ? "" : ";") + k;
    }
    const std::string path = req.path.empty() ? "/" : req.path;
    Signature s;
    s.canonical_request = req.method + "\n" + (service == "s3" ? path : double_encode_path(path)) + "\n" +
                          req.query + "\n" + canonical_headers + "\n" + signed_headers + "\n" +
                          sluice::sha256_hex(req.payload);
    const std::string date(amz_date.substr(0, 8));
    const std::string scope = date + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
    s.string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + scope + "\n" +
                       sluice::sha256_hex(s.canonical_request);
    const std::string k_date = hmac("AWS4" + creds.secret_key, date);
    const std::string k_region = hmac(k_date, region);
    const std::string k_service = hmac(k_region, service);
    const std::string k_signing = hmac(k_service, "aws4_request");
    const std::string raw = hmac(k_signing, s.string_to_sign);
    s.signature = hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
    s.authorization = "AWS4-HMAC-SHA256 Credential=" + creds.access_key + "/" + scope +
                      ", SignedHeaders=" + signed_headers + ", Signature=" + s.signature;
    return s;
}

}  // namespace sluice::aws
