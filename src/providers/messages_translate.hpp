#pragma once

// The Anthropic-compatible front door (POST /v1/messages) in front of OpenAI-format providers:
// Messages requests become chat-completion requests, and chat answers and chunk streams become
// Messages answers and the Messages event sequence.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <sluice/error.hpp>
#include <sluice/provider.hpp>

#include "json/json_reader.hpp"
#include "providers/anthropic_provider.hpp"
#include "sse/sse.hpp"

namespace sluice {

/// Messages request → OpenAI chat request (streams ask for usage). A wrong type anywhere is a
/// 400 naming its path; what OpenAI's chat format cannot carry (top_k, server tools, documents,
/// images in tool results, ...) is a 400 too, unless `drop_unsupported`.
std::optional<GatewayError> messages_to_chat_request(const nlohmann::json& in, std::string_view model,
                                                     nlohmann::json& out, bool drop_unsupported = false);
/// OpenAI chat completion → Messages response. `model` is what the client asked for; a
/// wrong-typed field is a 502 naming `provider`.
std::optional<GatewayError> chat_to_messages_response(const nlohmann::json& chat, std::string_view model,
                                                      std::string_view provider, nlohmann::json& out,
                                                      Usage& usage);

/// OpenAI chat.completion.chunk stream → Anthropic Messages event stream.
class ChatToMessagesStream : public StreamRelay {
public:
    explicit ChatToMessagesStream(std::string model) : model_(std::move(model)) {}
    bool on_event(const sse::Event& ev, std::string& out) override;
    bool finished() const override { return done_; }
    Usage usage() const override { return usage_; }

private:
    enum class Block {
        none,
        text,
        thinking,
        tool
    };
    void handle(json::Reader& r, const nlohmann::json& chunk, std::string& out);
    void start(std::string_view id, std::string& out);
    void open(Block kind, const nlohmann::json& content_block, std::string& out);
    void close_block(std::string& out);

    std::string model_;
    bool started_ = false;
    bool done_ = false;
    Usage usage_;
    std::int64_t cached_ = 0;
    Block block_ = Block::none;
    int block_index_ = -1;
    std::int64_t current_tool_ = -1;  ///< OpenAI tool index of the open tool_use block
    std::string stop_reason_ = "end_turn";
};

/// A provider relay that produces chat.completion.chunk events (Gemini's, say) chained into
/// ChatToMessagesStream, so /v1/messages can reach any translating provider.
class ChainedMessagesStream : public StreamRelay {
public:
    ChainedMessagesStream(std::unique_ptr<StreamRelay> inner, std::string model)
        : inner_(std::move(inner)), outer_(std::move(model)) {}
    bool on_event(const sse::Event& ev, std::string& out) override;
    bool wants_bytes() const override { return inner_->wants_bytes(); }
    bool on_bytes(std::string_view bytes, std::string& out) override;
    bool on_end(std::string& out) override;
    bool finished() const override { return outer_.finished(); }
    Usage usage() const override { return inner_->usage(); }

private:
    /// Feeds what the inner relay wrote to the outer one; false (with error()) when either failed.
    bool pass(bool inner_ok, std::string& out);

    std::unique_ptr<StreamRelay> inner_;
    ChatToMessagesStream outer_;
    sse::Decoder decoder_;
    std::string chat_;
};

/// Anthropic upstream, Anthropic client: events pass through untouched; usage is read from
/// message_start and message_delta.
class MessagesPassthroughStream : public StreamRelay {
public:
    bool on_event(const sse::Event& ev, std::string& out) override;
    bool finished() const override { return done_; }
    Usage usage() const override { return usage_; }

private:
    bool done_ = false;
    Usage usage_;
    AnthropicUsage acc_;
};

}  // namespace sluice
