#pragma once

// The Anthropic-compatible front door (POST /v1/messages) in front of OpenAI-format providers:
// Messages requests become chat-completion requests, and chat answers become Messages answers
// (streams are deltas written by the Anthropic event encoder, stream/client_encoders.hpp).

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
