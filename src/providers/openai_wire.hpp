#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sluice/delta.hpp>
#include <sluice/provider.hpp>

#include "json/json_scan.hpp"

namespace sluice {

/// OpenAI's wire format, the part the OpenAI-compatible providers are composed of (kind openai
/// and its presets, azure, mock): the client's JSON goes upstream byte for byte except for the
/// splices sluice needs (the upstream model name, `stream_options.include_usage` on streams),
/// answers come back as they are with their usage read strictly, and streams pass through or
/// are decoded into deltas. The owner adds its own target path and credentials.
class OpenAiWire {
public:
    /// `provider` names the owner in error messages.
    explicit OpenAiWire(std::string provider) : provider_(std::move(provider)) {}

    /// The path under the API root of an endpoint ("/chat/completions", ...).
    static std::string_view path(Endpoint e) noexcept;
    /// Method, Accept and body of the upstream request (a 400 for what OpenAI's API does not
    /// serve, /v1/messages/count_tokens); `out.target` and the credentials are the caller's.
    std::optional<GatewayError> build(const ApiRequest& req, std::string_view upstream_model,
                                      UpstreamRequest& out) const;
    /// Passes the provider's chunks through when the client reads OpenAI chunks unfiltered,
    /// else decodes them into deltas for `out.sink`.
    static std::unique_ptr<StreamRelay> stream_relay(const ApiRequest& req, StreamOutput out);
    /// Reads a non-stream answer as it goes to the client: its usage (strictly: it is what
    /// sluice bills) and whether a choice finished with content_filter.
    std::optional<GatewayError> read_answer(std::string_view body, Answer& answer) const;

private:
    std::string provider_;
};

/// The request body as it goes upstream: the client's bytes with the model value replaced (when
/// the target names another model) and, for streams, `stream_options.include_usage` set to true.
std::string rewrite_openai_body(const ApiRequest& req, std::string_view upstream_model);

/// The client's body with only the model value replaced (when it differs).
std::string splice_model(const ApiRequest& req, std::string_view upstream_model);

/// The OpenAI stream relay: passes events through, reads usage, and when the client did not ask
/// for usage hides what sluice asked for on its behalf (the usage-only chunk and "usage":null).
class OpenAiStreamRelay : public StreamRelay {
public:
    explicit OpenAiStreamRelay(bool client_wants_usage) : client_wants_usage_(client_wants_usage) {}
    bool on_event(const sse::Event& ev, std::string& out) override;
    bool takes_plain_data() const override { return true; }
    std::span<const std::string_view> plain_data_markers() const override;
    bool on_plain_data(std::string_view data, std::string_view raw, std::string& out) override;
    bool finished() const override { return done_; }
    Usage usage() const override { return usage_; }

private:
    bool client_wants_usage_;
    bool done_ = false;
    Usage usage_;
    std::vector<json::Member> top_;  ///< reused for every event
};

}  // namespace sluice
