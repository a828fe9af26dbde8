#pragma once

#include <map>

#include <nlohmann/json.hpp>

#include "providers/openai_provider.hpp"

namespace sluice {

/// Anthropic's Messages API behind the OpenAI chat-completions surface. Requests are translated
/// (system, turns merged by role, images, tools and tool results, tool_choice, max_tokens,
/// stop, metadata.user_id, response_format, reasoning_effort), answers and streams translated
/// back with usage (cached tokens included). Fields sluice does not model inside content parts
/// and tools (cache_control, ...) pass through untouched. Only /chat/completions is served.
class AnthropicProvider : public OpenAiProvider {
public:
    explicit AnthropicProvider(const ProviderConfig& cfg);
    std::string_view kind() const noexcept override { return "anthropic"; }

    std::optional<GatewayError> build_request(const ApiRequest& req, std::string_view upstream_model,
                                              UpstreamRequest& out) const override;
    std::optional<UpstreamRequest> models_request() const override;
    std::unique_ptr<StreamRelay> make_stream_relay(const ApiRequest& req) const override;
    Usage parse_usage(std::string_view body) const override;
    std::optional<GatewayError> translate_response(const ApiRequest& req, std::string& body,
                                                   Usage& usage) const override;
    GatewayError translate_error(int status, std::string_view body) const override;

protected:
    void add_headers(UpstreamRequest& out) const override;
};

/// OpenAI chat request → Anthropic Messages request. Returns a 400 error for what cannot be
/// expressed (n > 1, tool arguments that are not JSON, ...).
std::optional<GatewayError> openai_to_anthropic(const nlohmann::json& in, std::string_view model,
                                                int default_max_tokens, nlohmann::json& out);
/// Anthropic Messages response → OpenAI chat completion.
nlohmann::json anthropic_to_openai(const nlohmann::json& msg, Usage& usage);
/// Anthropic usage → OpenAI usage (prompt tokens include cache reads and writes).
Usage anthropic_usage(const nlohmann::json& u);

/// Anthropic SSE (message_start, content_block_*, message_delta, message_stop, ping, error) →
/// OpenAI chat.completion.chunk events, tool calls indexed as OpenAI does.
class AnthropicStreamRelay : public StreamRelay {
public:
    /// `created` is the chunks' timestamp (seconds since the epoch).
    AnthropicStreamRelay(bool client_wants_usage, std::int64_t created);
    void on_event(const sse::Event& ev, std::string& out) override;
    bool finished() const override { return done_; }
    Usage usage() const override { return usage_; }

private:
    void emit(const nlohmann::json& delta, const nlohmann::json& finish_reason, std::string& out);

    bool client_wants_usage_;
    bool done_ = false;
    Usage usage_;
    std::int64_t input_tokens_ = 0;
    std::int64_t cache_read_ = 0;
    std::int64_t cache_write_ = 0;
    std::int64_t output_tokens_ = 0;
    std::string id_;
    std::string model_;
    std::int64_t created_ = 0;
    std::map<int, int> tool_index_;  ///< content block index → OpenAI tool_calls index
    std::map<int, std::string> thinking_;   ///< thinking text per block, for thinking_blocks
    std::map<int, std::string> signature_;  ///< signature per thinking block
    int next_tool_ = 0;
    std::string finish_reason_;
};

}  // namespace sluice
