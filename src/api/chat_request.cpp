#include "api/chat_request.hpp"

#include "json/json_dom.hpp"

namespace sluice {

namespace {

using json::Reader;
using json::Type;

/// OpenAI chat fields no translator maps; kept apart so a target can say why it refuses them.
constexpr std::string_view kOpenAiOnly[] = {"audio",     "modalities",    "prediction", "web_search_options",
                                            "functions", "function_call", "verbosity"};

void read_part(Reader& r, const Json& p, std::size_t index, ChatPart& out) {
    out.index = index;
    out.raw = &p;
    if (!r.expect(p, Type::object)) {
        return;
    }
    const std::string* type = r.need_string(p, "type");
    if (type == nullptr) {
        return;
    }
    out.type = *type;
    if (*type == "text") {
        out.kind = ChatPart::Kind::text;
        if (const std::string* t = r.need_string(p, "text")) {
            out.text = *t;
        }
    } else if (*type == "refusal") {
        out.kind = ChatPart::Kind::refusal;
        if (const std::string* t = r.need_string(p, "refusal")) {
            out.text = *t;
        }
    } else if (*type == "image_url") {
        out.kind = ChatPart::Kind::image;
        const Json* image = json::find(p, "image_url");
        if (image == nullptr) {
            r.need_object(p, "image_url");  // records "missing"
        } else if (image->is_string()) {
            out.url = image->get_ref<const std::string&>();  // a common shorthand
        } else if (image->is_object()) {
            auto in_image = r.at("image_url");
            if (const std::string* url = r.need_string(*image, "url")) {
                out.url = *url;
            }
            r.string(*image, "detail");
        } else {
            r.wrong_type("image_url", "an object", *image);
        }
    } else if (*type == "input_audio") {
        out.kind = ChatPart::Kind::audio;
        if (const Json* audio = r.need_object(p, "input_audio")) {
            auto in_audio = r.at("input_audio");
            if (const std::string* d = r.need_string(*audio, "data")) {
                out.audio_data = *d;
            }
            if (const std::string* f = r.need_string(*audio, "format")) {
                out.audio_format = *f;
            }
        }
    } else if (*type == "file") {
        out.kind = ChatPart::Kind::file;
        if (const Json* file = r.need_object(p, "file")) {
            auto in_file = r.at("file");
            if (const std::string* d = r.string(*file, "file_data")) {
                out.file_data = *d;
            }
            if (const std::string* id = r.string(*file, "file_id")) {
                out.file_id = *id;
            }
            if (const std::string* name = r.string(*file, "filename")) {
                out.filename = *name;
            }
        }
    } else {
        out.kind = ChatPart::Kind::other;  // a provider-native block (Anthropic's document, ...)
    }
}

void read_content(Reader& r, const Json& m, ChatMessage& out) {
    const Json* content = json::find(m, "content");
    if (content == nullptr) {
        return;
    }
    auto in_content = r.at("content");
    if (content->is_string()) {
        out.has_content = true;
        out.content_is_text = true;
        out.text = content->get_ref<const std::string&>();
        return;
    }
    if (!content->is_array()) {
        r.wrong_type({}, "a string or an array of content parts", *content);
        return;
    }
    out.has_content = true;
    out.parts.resize(content->size());
    for (std::size_t i = 0; i < content->size() && r.ok(); ++i) {
        auto in_part = r.at(i);
        read_part(r, (*content)[i], i, out.parts[i]);
    }
}

void read_tool_calls(Reader& r, const Json& m, ChatMessage& out) {
    const Json* calls = r.array(m, "tool_calls");
    if (calls == nullptr) {
        return;
    }
    auto in_calls = r.at("tool_calls");
    out.tool_calls.resize(calls->size());
    for (std::size_t i = 0; i < calls->size() && r.ok(); ++i) {
        auto in_call = r.at(i);
        const Json& c = (*calls)[i];
        ChatToolCall& tc = out.tool_calls[i];
        tc.index = i;
        if (!r.expect(c, Type::object)) {
            return;
        }
        r.only(c, {"id", "type", "function", "extra_content", "index"});
        if (const std::string* id = r.need_string(c, "id")) {
            tc.id = *id;
        }
        if (const std::string* type = r.string(c, "type"); type != nullptr && *type != "function") {
            r.unsupported("type", "only tool calls of type 'function' can be translated.");
        }
        tc.extra_content = r.object(c, "extra_content");
        const Json* fn = r.need_object(c, "function");
        if (fn == nullptr) {
            return;
        }
        auto in_fn = r.at("function");
        if (const std::string* name = r.need_string(*fn, "name")) {
            tc.name = *name;
        }
        if (const std::string* args = r.string(*fn, "arguments")) {
            tc.arguments = *args;
        }
    }
}

void read_message(Reader& r, const Json& m, std::size_t index, ChatMessage& out) {
    out.index = index;
    out.raw = &m;
    if (!r.expect(m, Type::object)) {
        return;
    }
    const std::string* role = r.need_string(m, "role");
    if (role == nullptr) {
        return;
    }
    out.role = *role;
    if (const std::string* name = r.string(m, "name")) {
        out.name = *name;
    }
    if (*role == "system" || *role == "developer" || *role == "user") {
        r.only(m, {"role", "content", "name"});
        if (json::find(m, "content") == nullptr) {
            r.need_string(m, "content");  // records "missing"
        }
        read_content(r, m, out);
    } else if (*role == "assistant") {
        r.only(m, {"role", "content", "name", "tool_calls", "refusal", "audio", "function_call",
                   "reasoning_content", "thinking_blocks"});
        read_content(r, m, out);
        read_tool_calls(r, m, out);
        if (const std::string* refusal = r.string(m, "refusal"); refusal != nullptr && !out.has_content) {
            out.has_content = true;
            out.content_is_text = true;
            out.text = *refusal;
        }
        r.string(m, "reasoning_content");  // informational: the provider's own thinking text
        out.thinking_blocks = r.array(m, "thinking_blocks");
        if (out.thinking_blocks != nullptr) {
            auto in_blocks = r.at("thinking_blocks");
            for (std::size_t i = 0; i < out.thinking_blocks->size() && r.ok(); ++i) {
                auto in_block = r.at(i);
                const Json& b = (*out.thinking_blocks)[i];
                if (!r.expect(b, Type::object)) {
                    break;
                }
                const std::string* type = r.need_string(b, "type");
                if (type != nullptr && *type != "thinking" && *type != "redacted_thinking") {
                    r.fail("type", "expected 'thinking' or 'redacted_thinking'.");
                }
            }
        }
        if (json::find(m, "audio") != nullptr) {
            r.unsupported("audio", "audio answers cannot be sent back to this provider.");
        }
        if (json::find(m, "function_call") != nullptr) {
            r.unsupported("function_call", "the deprecated function_call is not translated; use tool_calls.");
        }
    } else if (*role == "tool") {
        r.only(m, {"role", "content", "tool_call_id", "name"});
        if (const std::string* id = r.need_string(m, "tool_call_id")) {
            out.tool_call_id = *id;
        }
        read_content(r, m, out);
    } else if (*role == "function") {
        r.unsupported("role", "the deprecated 'function' role is not translated; use 'tool'.");
    } else {
        r.fail("role", "unsupported role '" + std::string(*role) +
                           "' (expected system, developer, user, assistant or tool).");
    }
}

void read_tools(Reader& r, const Json& doc, ChatRequestView& out) {
    const Json* tools = r.array(doc, "tools");
    if (tools == nullptr) {
        return;
    }
    auto in_tools = r.at("tools");
    out.tools.resize(tools->size());
    for (std::size_t i = 0; i < tools->size() && r.ok(); ++i) {
        auto in_tool = r.at(i);
        const Json& t = (*tools)[i];
        ChatTool& tool = out.tools[i];
        tool.index = i;
        tool.raw = &t;
        if (!r.expect(t, Type::object)) {
            return;
        }
        const std::string* type = r.string(t, "type");
        if (type != nullptr && *type != "function") {
            tool.function = false;  // a provider-native tool (Anthropic's web_search, ...)
            continue;
        }
        const Json* fn = r.need_object(t, "function");
        if (fn == nullptr) {
            return;
        }
        auto in_fn = r.at("function");
        r.only(*fn, {"name", "description", "parameters", "strict"});
        if (const std::string* name = r.need_string(*fn, "name")) {
            tool.name = *name;
        }
        tool.description = r.string(*fn, "description");
        tool.parameters = r.object(*fn, "parameters");
        tool.strict = r.boolean(*fn, "strict");
    }
}

void read_tool_choice(Reader& r, const Json& doc, ChatRequestView& out) {
    const Json* tc = json::find(doc, "tool_choice");
    if (tc == nullptr) {
        return;
    }
    auto in_choice = r.at("tool_choice");
    if (tc->is_string()) {
        const auto& s = tc->get_ref<const std::string&>();
        if (s == "none") {
            out.tool_choice.mode = ChatToolChoice::Mode::none;
        } else if (s == "auto") {
            out.tool_choice.mode = ChatToolChoice::Mode::auto_;
        } else if (s == "required") {
            out.tool_choice.mode = ChatToolChoice::Mode::required;
        } else {
            r.fail("expected 'none', 'auto', 'required' or a function choice.");
        }
        return;
    }
    if (!tc->is_object()) {
        r.wrong_type({}, "a string or an object", *tc);
        return;
    }
    const std::string* type = r.need_string(*tc, "type");
    if (type != nullptr && *type != "function") {
        r.unsupported("type", "only tool choices of type 'function' can be translated.");
        return;
    }
    const Json* fn = r.need_object(*tc, "function");
    if (fn == nullptr) {
        return;
    }
    auto in_fn = r.at("function");
    if (const std::string* name = r.need_string(*fn, "name")) {
        out.tool_choice.mode = ChatToolChoice::Mode::function;
        out.tool_choice.function = *name;
    }
}

void read_response_format(Reader& r, const Json& doc, ChatRequestView& out) {
    const Json* rf = r.object(doc, "response_format");
    if (rf == nullptr) {
        return;
    }
    auto in_format = r.at("response_format");
    const std::string* type = r.need_string(*rf, "type");
    if (type == nullptr) {
        return;
    }
    if (*type != "text" && *type != "json_object" && *type != "json_schema") {
        r.fail("type", "expected 'text', 'json_object' or 'json_schema'.");
        return;
    }
    out.response_format = *type;
    if (*type == "json_schema") {
        const Json* js = r.need_object(*rf, "json_schema");
        if (js == nullptr) {
            return;
        }
        auto in_schema = r.at("json_schema");
        r.string(*js, "name");
        r.string(*js, "description");
        r.boolean(*js, "strict");
        out.response_schema = r.object(*js, "schema");
    }
}

void read_stop(Reader& r, const Json& doc, ChatRequestView& out) {
    const Json* stop = json::find(doc, "stop");
    if (stop == nullptr) {
        return;
    }
    out.stop_set = true;
    if (stop->is_string()) {
        out.stop.push_back(stop->get_ref<const std::string&>());
        return;
    }
    auto in_stop = r.at("stop");
    if (!stop->is_array()) {
        r.wrong_type({}, "a string or an array of strings", *stop);
        return;
    }
    for (std::size_t i = 0; i < stop->size(); ++i) {
        auto in_item = r.at(i);
        if (!r.expect((*stop)[i], Type::string)) {
            return;
        }
        out.stop.push_back((*stop)[i].get_ref<const std::string&>());
    }
}

bool is_known(std::string_view key) {
    static constexpr std::string_view kKnown[] = {"model",
                                                  "messages",
                                                  "stream",
                                                  "stream_options",
                                                  "max_tokens",
                                                  "max_completion_tokens",
                                                  "temperature",
                                                  "top_p",
                                                  "n",
                                                  "stop",
                                                  "presence_penalty",
                                                  "frequency_penalty",
                                                  "seed",
                                                  "logprobs",
                                                  "top_logprobs",
                                                  "logit_bias",
                                                  "user",
                                                  "tools",
                                                  "tool_choice",
                                                  "parallel_tool_calls",
                                                  "response_format",
                                                  "reasoning_effort",
                                                  "service_tier",
                                                  "store",
                                                  "metadata",
                                                  "prompt_cache_key",
                                                  "safety_identifier"};
    for (const auto k : kKnown) {
        if (k == key) {
            return true;
        }
    }
    return false;
}

}  // namespace

void read_chat_request(const Json& doc, json::Reader& r, ChatRequestView& out) {
    out = ChatRequestView{};
    out.doc = &doc;
    if (!r.expect(doc, Type::object)) {
        return;
    }
    const Json* messages = r.need_array(doc, "messages");
    if (messages != nullptr) {
        auto in_messages = r.at("messages");
        out.messages.resize(messages->size());
        for (std::size_t i = 0; i < messages->size() && r.ok(); ++i) {
            auto in_item = r.at(i);
            read_message(r, (*messages)[i], i, out.messages[i]);
        }
    }
    read_tools(r, doc, out);
    read_tool_choice(r, doc, out);
    read_response_format(r, doc, out);
    read_stop(r, doc, out);
    out.stream = r.boolean(doc, "stream").value_or(false);
    r.object(doc, "stream_options");
    out.max_tokens = r.integer(doc, "max_tokens");
    if (auto mct = r.integer(doc, "max_completion_tokens")) {
        out.max_tokens = mct;
    }
    if (out.max_tokens && *out.max_tokens < 1) {
        r.fail(json::find(doc, "max_completion_tokens") != nullptr ? "max_completion_tokens" : "max_tokens",
               "must be at least 1.");
    }
    out.temperature = r.number(doc, "temperature");
    out.top_p = r.number(doc, "top_p");
    out.n = r.integer(doc, "n");
    if (out.n && *out.n < 1) {
        r.fail("n", "must be at least 1.");
    }
    out.presence_penalty = r.number(doc, "presence_penalty");
    out.frequency_penalty = r.number(doc, "frequency_penalty");
    out.seed = r.integer(doc, "seed");
    out.logprobs = r.boolean(doc, "logprobs");
    out.top_logprobs = r.integer(doc, "top_logprobs");
    out.logit_bias = r.object(doc, "logit_bias");
    out.parallel_tool_calls = r.boolean(doc, "parallel_tool_calls");
    out.user = r.string(doc, "user");
    out.reasoning_effort = r.string(doc, "reasoning_effort");
    out.service_tier = r.string(doc, "service_tier");
    out.store = r.boolean(doc, "store");
    out.metadata = r.object(doc, "metadata");
    r.string(doc, "prompt_cache_key");
    r.string(doc, "safety_identifier");
    for (const auto& item : doc.items()) {
        const std::string& key = item.key();
        if (item.value().is_null() || is_known(key)) {
            continue;
        }
        bool openai_only = false;
        for (const auto k : kOpenAiOnly) {
            openai_only = openai_only || k == key;
        }
        (openai_only ? out.openai_only : out.unknown).push_back(key);
    }
}

bool parse_embedded_json(std::string_view text, Json& out) {
    return json::parse_untrusted(text, out);
}

std::string message_text(const ChatMessage& m) {
    if (m.content_is_text) {
        return std::string(m.text);
    }
    std::string out;
    for (const auto& p : m.parts) {
        if (p.kind == ChatPart::Kind::text) {
            out += p.text;
        }
    }
    return out;
}

}  // namespace sluice
