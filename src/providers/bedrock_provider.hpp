#pragma once

#include <map>

#include <nlohmann/json.hpp>
#include <sluice/delta.hpp>

#include "aws/eventstream.hpp"
#include "aws/sigv4.hpp"
#include "json/json_reader.hpp"
#include "providers/configured_provider.hpp"

namespace sluice {

/// Amazon Bedrock's Converse and ConverseStream APIs behind the OpenAI surface, signed with SigV4
/// (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN). Streams are
/// AWS event-stream binary frames, decoded incrementally; a frame with a bad CRC ends the stream
/// with a terminal error event.
class BedrockProvider : public ConfiguredProvider {
public:
    BedrockProvider(const ProviderConfig& cfg, aws::Credentials creds);
    std::string_view kind() const noexcept override { return "bedrock"; }
    bool enabled() const noexcept override;

    std::optional<GatewayError> build_request(const ApiRequest& req, std::string_view upstream_model,
                                              UpstreamRequest& out) const override;
    std::optional<UpstreamRequest> models_request() const override { return std::nullopt; }
    std::vector<std::string> parse_models(std::string_view /*body*/) const override { return {}; }
    std::unique_ptr<StreamRelay> make_stream_relay(const ApiRequest& req, StreamOutput out,
                                                   std::int64_t now) const override;
    std::string_view stream_content_type() const noexcept override {
        return "application/vnd.amazon.eventstream";
    }
    std::optional<GatewayError> translate_response(const ApiRequest& req, std::string& body,
                                                   std::int64_t now_unix, Answer& answer) const override;
    ProviderError translate_error(int status, const HeaderView& headers, std::string_view body,
                                  std::int64_t now_unix) const override;

    /// Builds and signs the request for `amz_date` (tests pin the clock with it).
    std::optional<GatewayError> build_signed(const ApiRequest& req, std::string_view upstream_model,
                                             std::string_view amz_date, UpstreamRequest& out) const;

private:
    aws::Credentials creds_;
    std::string region_;
};

/// OpenAI chat request → Converse request; 400 naming the field for wrong types and for what
/// Converse cannot express (unless `drop_unsupported`).
std::optional<GatewayError> openai_to_converse(const nlohmann::json& in, nlohmann::json& out,
                                               bool drop_unsupported = false);
/// Converse response → OpenAI chat completion dated `created` (seconds since the epoch); 502
/// naming the field for a wrong-typed answer.
std::optional<GatewayError> converse_to_openai(const nlohmann::json& resp, std::string_view model,
                                               std::string_view provider, std::int64_t created,
                                               nlohmann::json& out, Usage& usage);

/// ConverseStream event-stream bytes → deltas.
class BedrockStreamRelay : public DeltaRelay {
public:
    /// `model` names the answer; `created` dates it (seconds since the epoch).
    BedrockStreamRelay(std::unique_ptr<DeltaSink> sink, std::string model, std::int64_t created)
        : DeltaRelay(std::move(sink)), model_(std::move(model)), created_(created) {}
    bool wants_bytes() const override { return true; }
    bool on_bytes(std::string_view bytes, std::string& out) override;
    bool on_event(const sse::Event& /*ev*/, std::string& /*out*/) override { return true; }
    bool finished() const override { return done_; }
    Usage usage() const override { return usage_; }

private:
    static constexpr std::size_t kMaxToolCalls = 4096;
    bool on_message(const aws::EventMessage& m, std::string& out);
    void handle(json::Reader& r, const std::string& type, const nlohmann::json& data, std::string& out);

    void block_start(json::Reader& r, const nlohmann::json& data, std::string& out);
    void block_delta(json::Reader& r, const nlohmann::json& data, std::string& out);

    std::string model_;
    std::int64_t created_;
    aws::EventStreamDecoder decoder_;
    std::map<std::int64_t, int> tool_index_;  ///< content block index → OpenAI tool_calls index
    int next_tool_ = 0;
    bool started_ = false;
    bool done_ = false;
    bool stopped_ = false;  ///< a handler failed: nothing more is decoded
    Usage usage_;
};

}  // namespace sluice
