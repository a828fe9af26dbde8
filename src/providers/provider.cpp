#include <sluice/provider.hpp>

#include "routing/select.hpp"
#include "util/scrub.hpp"

namespace sluice {

std::string host_header(const UpstreamSettings& s) {
    std::string h = s.host.find(':') != std::string::npos ? "[" + s.host + "]" : s.host;
    if ((s.tls && s.port != 443) || (!s.tls && s.port != 80)) {
        h += ':';
        h += std::to_string(s.port);
    }
    return h;
}

LocalResponse Provider::respond_locally(const UpstreamRequest& /*req*/) const {
    LocalResponse r;
    r.status = 500;
    r.body = GatewayError::internal("provider cannot answer locally").to_json();
    return r;
}

std::string Provider::scrub(std::string_view text, std::size_t max_len) const {
    return scrub_secrets(text, settings().secrets, max_len);
}

GatewayError Provider::scrubbed(GatewayError e) const {
    e.message = scrub(e.message);
    e.type = scrub(e.type, 64);
    e.code = scrub(e.code, 64);
    e.param = scrub(e.param, 256);
    return e;
}

std::optional<std::chrono::milliseconds> Provider::retry_after_headers(const HeaderView& headers,
                                                                       std::int64_t now_unix) {
    return routing::parse_retry_after(headers.find("retry-after-ms"), headers.find("x-ms-retry-after-ms"),
                                      headers.find("retry-after"), now_unix);
}

}  // namespace sluice
