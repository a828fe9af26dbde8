#pragma once

// An OpenAI chat-completions request body, checked for types at every level and viewed as typed
// fields, for the providers that translate it into another dialect (Anthropic, Gemini, Bedrock)
// and for the mock provider. Reading it is the one place that knows the OpenAI request schema:
// a wrong type anywhere (`"role": 5`, `"content": {"x":1}`, a text part whose text is a number,
// `"tools": [{"function": {"name": 5}}]`, tool-call `"arguments": 5`) is a 400 naming its path,
// never an exception and never a field treated as absent. What each target can represent is the
// translator's business; everything it reads here already has the right type.
//
// Views (string_view, const Json*) point into the DOM given to read_chat_request(), which must
// outlive the view.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "json/json_reader.hpp"

namespace sluice {

using Json = nlohmann::json;

/// One content part of a message.
struct ChatPart {
    enum class Kind {
        text,
        image,
        audio,
        file,
        refusal,
        other
    };
    Kind kind = Kind::other;
    std::size_t index = 0;          ///< position in the content array (for error paths)
    std::string_view type;          ///< the part's "type"
    std::string_view text;          ///< text, refusal
    std::string_view url;           ///< image: image_url.url (or a bare image_url string)
    std::string_view audio_data;    ///< input_audio.data
    std::string_view audio_format;  ///< input_audio.format
    std::string_view file_data;     ///< file.file_data (a data: URL)
    std::string_view file_id;       ///< file.file_id (OpenAI's files API)
    std::string_view filename;      ///< file.filename
    const Json* raw = nullptr;      ///< the part object itself (extra keys such as cache_control)
};

struct ChatToolCall {
    std::size_t index = 0;
    std::string_view id;
    std::string_view name;
    std::string_view arguments;           ///< JSON text, as OpenAI sends it
    const Json* extra_content = nullptr;  ///< Google's thought-signature convention
};

struct ChatMessage {
    std::size_t index = 0;
    std::string_view role;         ///< system, developer, user, assistant, tool
    bool has_content = false;      ///< content present and not null
    bool content_is_text = false;  ///< content was a string
    std::string_view text;         ///< when content_is_text
    std::vector<ChatPart> parts;   ///< when content was an array
    std::vector<ChatToolCall> tool_calls;
    std::string_view tool_call_id;          ///< tool messages
    std::string_view name;                  ///< participant name (OpenAI's `name`)
    const Json* thinking_blocks = nullptr;  ///< sluice's round trip of Anthropic thinking
    const Json* raw = nullptr;
};

struct ChatTool {
    std::size_t index = 0;
    bool function = true;  ///< type "function" (else a provider-native tool)
    std::string_view name;
    const std::string* description = nullptr;
    const Json* parameters = nullptr;  ///< JSON schema object
    std::optional<bool> strict;
    const Json* raw = nullptr;
};

/// tool_choice: "none" | "auto" | "required" | {"type":"function","function":{"name":...}}.
struct ChatToolChoice {
    enum class Mode {
        none_set,
        none,
        auto_,
        required,
        function
    };
    Mode mode = Mode::none_set;
    std::string_view function;
};

struct ChatRequestView {
    const Json* doc = nullptr;
    std::vector<ChatMessage> messages;
    std::vector<ChatTool> tools;
    ChatToolChoice tool_choice;
    bool stream = false;
    std::optional<std::int64_t> max_tokens;  ///< max_completion_tokens, else max_tokens
    std::optional<double> temperature;
    std::optional<double> top_p;
    std::optional<std::int64_t> n;
    std::vector<std::string_view> stop;
    bool stop_set = false;
    std::optional<double> presence_penalty;
    std::optional<double> frequency_penalty;
    std::optional<std::int64_t> seed;
    std::optional<bool> logprobs;
    std::optional<std::int64_t> top_logprobs;
    const Json* logit_bias = nullptr;
    std::optional<bool> parallel_tool_calls;
    const std::string* user = nullptr;
    const std::string* reasoning_effort = nullptr;
    const std::string* service_tier = nullptr;
    std::optional<bool> store;
    const Json* metadata = nullptr;
    /// response_format: type text / json_object / json_schema (with its schema).
    std::string_view response_format;
    const Json* response_schema = nullptr;
    /// Known OpenAI fields no translator maps (audio output, predicted outputs, web search,
    /// the deprecated functions): present = the target cannot honour them.
    std::vector<std::string_view> openai_only;
    /// Top-level members that are not OpenAI chat fields (provider-native or mistakes).
    std::vector<std::string_view> unknown;
};

/// Reads the chat request `doc` into `out`, recording the first type error in `r` (client side).
void read_chat_request(const Json& doc, json::Reader& r, ChatRequestView& out);

/// Parses JSON found inside a string (tool-call arguments, tool results) with the same caps as a
/// request body (depth 64, a million values): false when it is not JSON within them.
bool parse_embedded_json(std::string_view text, Json& out);

/// The text of a message's content: the string, or its text parts joined.
std::string message_text(const ChatMessage& m);

}  // namespace sluice
