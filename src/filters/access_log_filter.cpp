#include "filters/builtin.hpp"
#include "http/http_parser.hpp"
#include "log/log.hpp"

namespace sluice {

void AccessLogFilter::on_complete(const RequestContext& ctx, const Outcome& /*outcome*/) const {
    const std::string_view target = ctx.head.target;
    log::access(ctx, ctx.head.method, target.substr(0, target.find('?')));
}

}  // namespace sluice
