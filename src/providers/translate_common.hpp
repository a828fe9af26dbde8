#pragma once

// Small pieces every translating provider needs when it turns an OpenAI chat request into its
// own dialect (Anthropic, Gemini, Bedrock, and the Messages front door).

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <sluice/error.hpp>

namespace sluice {

/// Appends `items` to the last turn when it has the same role (the dialects want alternating
/// roles), else starts a new turn {"role": role, items_key: items}. Empty `items` add nothing.
void append_turn(nlohmann::json& turns, std::string_view role, nlohmann::json items,
                 const char* items_key = "content");

/// The arguments of an OpenAI tool call as a JSON object ("" = {}); a 400 naming `provider_label`
/// when they are not a JSON object.
std::optional<GatewayError> tool_call_input(const nlohmann::json& call, std::string_view provider_label,
                                            nlohmann::json& input);

/// The text of a content value: a string, or the text parts of an array, concatenated.
std::string content_text(const nlohmann::json& content);

}  // namespace sluice
