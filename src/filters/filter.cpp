// Out-of-line parts of the public filter interface (include/sluice/filter.hpp).
#include <sluice/filter.hpp>

#include "http/http_parser.hpp"
#include "util/strings.hpp"
#include "util/url.hpp"

namespace sluice {

boost::asio::awaitable<RequestVerdict> Filter::on_request(RequestContext& /*ctx*/) const {
    co_return RequestVerdict::proceed();
}

bool ResponseHeaders::add(std::string_view name, std::string_view value) {
    static constexpr std::string_view kOwned[] = {
        "content-length", "transfer-encoding", "connection", "content-type", "date",
        "server",         "keep-alive",        "upgrade",    "trailer"};
    if (!valid_header_name(name) || !valid_header_value(value)) {
        return false;
    }
    for (const std::string_view owned : kOwned) {
        if (iequals(name, owned)) {
            return false;
        }
    }
    fields_.emplace_back(std::string(name), std::string(value));
    return true;
}

std::string_view UpstreamResponseHead::header(std::string_view name) const noexcept {
    return head_ != nullptr ? head_->find(name) : std::string_view{};
}

std::string_view RequestContext::header(std::string_view name) const noexcept {
    return head.find(name);
}

}  // namespace sluice
