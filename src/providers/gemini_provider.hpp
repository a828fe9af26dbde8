#pragma once

#include <nlohmann/json.hpp>
#include <sluice/delta.hpp>

#include "providers/configured_provider.hpp"

namespace sluice {

/// Google AI Studio's Gemini API behind the OpenAI surface: generateContent and
/// streamGenerateContent?alt=sse for chat, batchEmbedContents for embeddings, the key in
/// x-goog-api-key. A tool call's thought signature travels to the client as
/// `extra_content.google.thought_signature` (Google's own OpenAI-compatible convention) and is
/// put back on the functionCall part when the client sends the call in a later turn.
class GeminiProvider : public ConfiguredProvider {
public:
    explicit GeminiProvider(const ProviderConfig& cfg) : ConfiguredProvider(cfg) {}
    std::string_view kind() const noexcept override { return "gemini"; }

    std::optional<GatewayError> build_request(const ApiRequest& req, std::string_view upstream_model,
                                              UpstreamRequest& out) const override;
    std::optional<UpstreamRequest> models_request() const override;
    std::vector<std::string> parse_models(std::string_view body) const override;
    std::unique_ptr<StreamRelay> make_stream_relay(const ApiRequest& req, StreamOutput out,
                                                   std::int64_t now) const override;
    std::optional<GatewayError> translate_response(const ApiRequest& req, std::string& body,
                                                   std::int64_t now_unix, Answer& answer) const override;
    ProviderError translate_error(int status, const HeaderView& headers, std::string_view body,
                                  std::int64_t now_unix) const override;

private:
    void add_headers(UpstreamRequest& out) const;
};

/// OpenAI chat request → Gemini GenerateContentRequest; 400 naming the field for wrong types and
/// for what Gemini cannot express (unless `drop_unsupported`).
std::optional<GatewayError> openai_to_gemini(const nlohmann::json& in, nlohmann::json& out,
                                             bool drop_unsupported = false);
/// Gemini GenerateContentResponse → OpenAI chat completion dated `created` (seconds since the
/// epoch); 502 naming the field when the provider's answer has a wrong type.
std::optional<GatewayError> gemini_to_openai(const nlohmann::json& resp, std::string_view model,
                                             std::string_view provider, std::int64_t created,
                                             nlohmann::json& out, Usage& usage);

/// streamGenerateContent?alt=sse events → deltas. Gemini sends no [DONE]: the end of the body
/// ends the stream (on_end).
class GeminiStreamRelay : public DeltaRelay {
public:
    /// `model` names the answer; `created` dates it (seconds since the epoch).
    GeminiStreamRelay(std::unique_ptr<DeltaSink> sink, std::string model, std::int64_t created)
        : DeltaRelay(std::move(sink)), model_(std::move(model)), created_(created) {}
    bool on_event(const sse::Event& ev, std::string& out) override;
    bool on_end(std::string& out) override;
    bool finished() const override { return done_; }
    Usage usage() const override { return usage_; }

private:
    void push_calls(const nlohmann::json& calls, std::string& out);

    std::string model_;
    std::int64_t created_;
    bool started_ = false;
    bool finish_sent_ = false;
    bool done_ = false;
    int next_tool_ = 0;
    Usage usage_;
    std::optional<StreamDelta> usage_delta_;  ///< the last usageMetadata, sent at the end
};

}  // namespace sluice
