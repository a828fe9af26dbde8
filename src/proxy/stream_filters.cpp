#include "proxy/stream_filters.hpp"

#include "runtime/runtime.hpp"
#include "stream/client_encoders.hpp"

namespace sluice::proxy {

FilteredSink::FilteredSink(std::vector<ActiveStreamFilter> filters, std::unique_ptr<DeltaSink> encoder)
    : filters_(std::move(filters)), pending_(filters_.size(), 0), encoder_(std::move(encoder)) {}

bool FilteredSink::pass(std::size_t i, StreamDelta&& d, std::string& out) {
    if (i == filters_.size()) {
        return encoder_->on_delta(std::move(d), out) || fail(encoder_->error());
    }
    ActiveStreamFilter& f = filters_[i];
    if (d.carries_text()) {
        pending_[i] += utf8_length(d.text);
    }
    std::vector<StreamDelta> released;
    auto stop = f.filter->on_delta(std::move(d), released);
    if (!released.empty()) {
        pending_[i] = 0;
    } else if (!stop && pending_[i] > f.filter->holdback_limit()) {
        stopped_by_filter_ = true;
        GatewayError e = GatewayError::internal(
            "The stream filter '" + std::string(f.name) + "' held back more than " +
            std::to_string(f.filter->holdback_limit()) + " characters, its declared limit.");
        e.code = "stream_filter_error";
        return fail(std::move(e));
    }
    return forward(i, released, std::move(stop), out);
}

bool FilteredSink::forward(std::size_t i, std::vector<StreamDelta>& released,
                           std::optional<GatewayError> stop, std::string& out) {
    for (StreamDelta& r : released) {
        if (!pass(i + 1, std::move(r), out)) {
            return false;
        }
    }
    if (stop) {
        stopped_by_filter_ = true;
        return fail(std::move(*stop));
    }
    return true;
}

bool FilteredSink::on_end(std::string& out) {
    for (std::size_t i = 0; i < filters_.size(); ++i) {
        std::vector<StreamDelta> released;
        auto stop = filters_[i].filter->on_end(released);
        if (!forward(i, released, std::move(stop), out)) {
            return false;
        }
    }
    return encoder_->on_end(out) || fail(encoder_->error());
}

StreamOutput stream_output(const RequestContext& ctx, FilteredSink*& filtered) {
    StreamOutput o;
    filtered = nullptr;
    auto encoder = make_client_encoder(ctx.api);
    auto filters = ctx.runtime.filters().on_stream(ctx);
    if (filters.empty()) {
        o.sink = std::move(encoder);
        o.passthrough = ctx.api.endpoint == Endpoint::messages ? StreamOutput::Passthrough::anthropic
                                                               : StreamOutput::Passthrough::openai;
        return o;
    }
    auto sink = std::make_unique<FilteredSink>(std::move(filters), std::move(encoder));
    filtered = sink.get();
    o.sink = std::move(sink);
    return o;
}

}  // namespace sluice::proxy
