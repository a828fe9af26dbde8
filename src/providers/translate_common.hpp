#pragma once

// Small pieces every translating provider needs when it turns an OpenAI chat request into its
// own dialect (Anthropic, Gemini, Bedrock, and the Messages front door), and back.

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <sluice/error.hpp>

#include "api/chat_request.hpp"
#include "json/json_reader.hpp"

namespace sluice {

/// What a translation target is called and whether it drops what it cannot represent.
struct TargetRules {
    std::string_view label;         ///< "Anthropic", "Gemini", "Bedrock", "this provider"
    bool drop_unsupported = false;  ///< the provider's drop_unsupported_params
};

/// A field (at `path`) the target cannot represent: refused with 400 unsupported_parameter, or
/// left out when the provider drops unsupported parameters.
void refuse(json::Reader& r, const TargetRules& t, std::string path, std::string_view why);

/// Which OpenAI sampling features a target has (the rest are refused when they change the answer).
struct SamplingSupport {
    bool n = false;          ///< several choices
    bool penalties = false;  ///< presence_penalty / frequency_penalty
    bool seed = false;
};
/// Refuses the request fields no non-OpenAI target maps (logprobs, logit_bias, store, audio,
/// predicted outputs, ...) and the sampling features `s` says the target lacks, each only when
/// its value would change the answer (n: 1, penalties of 0 and logprobs: false are fine).
void refuse_openai_only(json::Reader& r, const TargetRules& t, const ChatRequestView& v, SamplingSupport s);
/// Refuses `name` on messages (participant names have no equivalent outside OpenAI).
void refuse_message_names(json::Reader& r, const TargetRules& t, const ChatRequestView& v);

/// Error paths of the view's items.
std::string message_path(std::size_t m);
std::string part_path(std::size_t m, std::size_t p);
std::string call_path(std::size_t m, std::size_t c);

/// Appends `items` to the last turn when it has the same role (the dialects want alternating
/// roles), else starts a new turn {"role": role, items_key: items}. Empty `items` add nothing.
void append_turn(nlohmann::json& turns, std::string_view role, nlohmann::json items,
                 const char* items_key = "content");

/// The arguments of a tool call as a JSON object ("" = {}), parsed with the body's caps; records
/// a 400 at the call's arguments when they are not a JSON object.
bool tool_call_input(json::Reader& r, const ChatMessage& m, const ChatToolCall& c, std::string_view target,
                     nlohmann::json& input);

/// A data: URL split into its media type and base64 payload; false when it is not one.
bool split_data_url(std::string_view url, std::string_view& media_type, std::string_view& data);

/// Maps reasoning_effort to a thinking budget in tokens (0 = off); false for an unknown value.
bool reasoning_budget(std::string_view effort, std::int64_t low, std::int64_t medium, std::int64_t high,
                      std::int64_t& budget);

/// True when a translated chat completion has a choice that finished with content_filter (each
/// translator maps its provider's own refusal reasons to it).
bool chat_refused(const nlohmann::json& chat);

}  // namespace sluice
