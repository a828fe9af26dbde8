#pragma once

// The request's stream filters between a provider's decoder and the client's encoder: each
// delta goes through the filters in chain order, and what the last one releases is encoded.
// Every filter's hold-back is bounded by the limit it declares.

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <sluice/delta.hpp>

#include "filters/chain.hpp"

namespace sluice::proxy {

class FilteredSink : public DeltaSink {
public:
    FilteredSink(std::vector<ActiveStreamFilter> filters, std::unique_ptr<DeltaSink> encoder);
    bool on_delta(StreamDelta&& d, std::string& out) override { return pass(0, std::move(d), out); }
    bool on_end(std::string& out) override;
    /// True when a stream filter stopped the stream (not the provider, not the encoder): the
    /// gateway's own verdict, never retried.
    bool stopped_by_filter() const noexcept { return stopped_by_filter_; }

private:
    /// Delta `d` into stage `i` (filters_.size() is the encoder).
    bool pass(std::size_t i, StreamDelta&& d, std::string& out);
    /// What stage `i` released, into stage i + 1; then the stage's stop, if it asked for one.
    bool forward(std::size_t i, std::vector<StreamDelta>& released, std::optional<GatewayError> stop,
                 std::string& out);

    std::vector<ActiveStreamFilter> filters_;
    std::vector<std::size_t> pending_;  ///< per filter: characters taken in since it last released
    std::unique_ptr<DeltaSink> encoder_;
    bool stopped_by_filter_ = false;
};

/// The sink of one streaming attempt: the client's encoder behind the request's stream filters,
/// and passthrough in the client's dialect when there are none. `filtered` is set to the
/// filter stage when there is one.
StreamOutput stream_output(const RequestContext& ctx, FilteredSink*& filtered);

}  // namespace sluice::proxy
