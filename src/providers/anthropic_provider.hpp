#pragma once

#include <map>

#include <nlohmann/json.hpp>

#include <sluice/delta.hpp>

#include "json/json_reader.hpp"
#include "providers/configured_provider.hpp"

namespace sluice {

/// Anthropic's Messages API behind the OpenAI chat-completions surface. Requests are translated
/// (system, turns merged by role, images, tools and tool results, tool_choice, max_tokens,
/// stop, metadata.user_id, response_format, reasoning_effort), answers and streams translated
/// back with usage (cached tokens included). Fields sluice does not model inside content parts
/// and tools (cache_control, ...) pass through untouched. Only /chat/completions is served.
class AnthropicProvider : public ConfiguredProvider {
public:
    explicit AnthropicProvider(const ProviderConfig& cfg);
    std::string_view kind() const noexcept override { return "anthropic"; }
    bool takes_messages() const noexcept override { return true; }

    std::optional<GatewayError> build_request(const ApiRequest& req, std::string_view upstream_model,
                                              UpstreamRequest& out) const override;
    std::optional<UpstreamRequest> models_request() const override;
    std::vector<std::string> parse_models(std::string_view body) const override {
        return model_ids_from_list(body);
    }
    std::unique_ptr<StreamRelay> make_stream_relay(const ApiRequest& req, StreamOutput out,
                                                   std::int64_t now) const override;
    std::optional<GatewayError> translate_response(const ApiRequest& req, std::string& body,
                                                   std::int64_t now_unix, Answer& answer) const override;
    ProviderError translate_error(int status, const HeaderView& headers, std::string_view body,
                                  std::int64_t now_unix) const override;

private:
    void add_headers(UpstreamRequest& out) const;
    /// Anthropic's error body as the error sluice answers with (types mapped to OpenAI's).
    GatewayError anthropic_error(int status, std::string_view body) const;
};

/// OpenAI chat request → Anthropic Messages request. Returns a 400 naming the field for a
/// wrong type anywhere and for what Anthropic cannot express (n > 1, tool arguments that are not
/// a JSON object, logprobs, ...), unless `drop_unsupported` drops the latter.
std::optional<GatewayError> openai_to_anthropic(const nlohmann::json& in, std::string_view model,
                                                int default_max_tokens, nlohmann::json& out,
                                                bool drop_unsupported = false);
/// Anthropic Messages response → OpenAI chat completion dated `created` (seconds since the
/// epoch); a 502 upstream_invalid_response naming the field when the provider's answer has a
/// wrong type.
std::optional<GatewayError> anthropic_to_openai(const nlohmann::json& msg, std::string_view provider,
                                                std::int64_t created, nlohmann::json& out, Usage& usage);
/// An `error` event of an Anthropic stream as the error sluice reports (status by its type:
/// 429 rate limit, 529 overloaded, 500 api_error, else 502).
GatewayError anthropic_stream_error(const nlohmann::json& data);

/// Anthropic token counts, as reported (a stream reports them in two events).
struct AnthropicUsage {
    std::optional<std::int64_t> input;
    std::optional<std::int64_t> output;
    std::optional<std::int64_t> cache_read;
    std::optional<std::int64_t> cache_write;
    /// Counts in `later` replace these.
    void merge(const AnthropicUsage& later);
    /// OpenAI's view: prompt tokens include cache reads and writes.
    Usage usage() const;
};
/// Reads a usage object strictly: a count that is not a non-negative integer is recorded in `r`.
void read_anthropic_usage(json::Reader& r, const nlohmann::json& u, AnthropicUsage& out);

/// Anthropic SSE (message_start, content_block_*, message_delta, message_stop, ping, error) →
/// deltas, tool calls indexed as OpenAI does (one index per tool_use block, in order).
class AnthropicStreamRelay : public DeltaRelay {
public:
    /// `created` is the answer's timestamp (seconds since the epoch).
    AnthropicStreamRelay(std::unique_ptr<DeltaSink> sink, std::int64_t created);
    bool on_event(const sse::Event& ev, std::string& out) override;
    bool finished() const override { return done_; }
    Usage usage() const override { return usage_; }

private:
    static constexpr std::size_t kMaxToolCalls = 4096;
    void handle(json::Reader& r, const std::string& type, const nlohmann::json& data, std::string& out);
    void block_start(json::Reader& r, const nlohmann::json& data, std::string& out);
    void block_delta(json::Reader& r, const nlohmann::json& data, std::string& out);
    void block_stop(json::Reader& r, const nlohmann::json& data, std::string& out);
    void read_usage(json::Reader& r, const nlohmann::json& holder);

    bool done_ = false;
    Usage usage_;
    AnthropicUsage usage_acc_;
    std::int64_t created_ = 0;
    std::map<std::int64_t, int> tool_index_;         ///< content block index → OpenAI tool_calls index
    std::map<std::int64_t, std::string> thinking_;   ///< thinking text per block, for thinking_blocks
    std::map<std::int64_t, std::string> signature_;  ///< signature per thinking block
    std::size_t buffered_ = 0;                       ///< bytes held in thinking_ and signature_ (capped)
    int next_tool_ = 0;
    std::string finish_reason_;
};

}  // namespace sluice
