#include "providers/messages_translate.hpp"

#include <algorithm>

#include "json/json_dom.hpp"
#include "providers/anthropic_provider.hpp"
#include "providers/openai_wire.hpp"
#include "providers/translate_common.hpp"
#include "sse/sse.hpp"
#include "stream/client_encoders.hpp"

namespace sluice {

using Json = nlohmann::json;
using json::Reader;
using json::Type;

namespace {

/// The pieces of one Anthropic message, translated: OpenAI content parts, tool results (which
/// become `tool` messages), tool uses (which become tool_calls) and the plain text.
struct Translated {
    Json parts = Json::array();
    Json tool_results = Json::array();  ///< {"tool_call_id","content"}
    Json tool_calls = Json::array();
    std::string text;
};

/// An image block's source → an OpenAI image URL.
void image_url(Reader& r, const TargetRules& t, const Json& block, std::string& url) {
    const Json* src = r.need_object(block, "source");
    if (src == nullptr) {
        return;
    }
    auto in_src = r.at("source");
    const std::string* type = r.need_string(*src, "type");
    if (type == nullptr) {
        return;
    }
    if (*type == "base64") {
        const std::string* media = r.need_string(*src, "media_type");
        const std::string* data = r.need_string(*src, "data");
        if (media != nullptr && data != nullptr) {
            url = "data:" + *media + ";base64," + *data;
        }
    } else if (*type == "url") {
        if (const std::string* u = r.need_string(*src, "url")) {
            url = *u;
        }
    } else {
        refuse(r, t, r.path_with("type"), "images are sent as base64 or url sources");
    }
}

/// The text of a tool_result's content (a string or text blocks); images cannot travel in an
/// OpenAI tool message.
void tool_result_text(Reader& r, const TargetRules& t, const Json& block, std::string& text) {
    const Json* content = json::find(block, "content");
    if (content == nullptr) {
        return;
    }
    auto in_content = r.at("content");
    if (content->is_string()) {
        text = content->get_ref<const std::string&>();
        return;
    }
    if (!content->is_array()) {
        r.wrong_type({}, "a string or an array of content blocks", *content);
        return;
    }
    for (std::size_t i = 0; i < content->size() && r.ok(); ++i) {
        auto in_item = r.at(i);
        const Json& b = (*content)[i];
        if (!r.expect(b, Type::object)) {
            return;
        }
        const std::string* type = r.need_string(b, "type");
        if (type == nullptr) {
            return;
        }
        if (*type == "text") {
            if (const std::string* s = r.need_string(b, "text")) {
                text += *s;
            }
        } else {
            refuse(r, t, r.path_with("type"), "tool results travel as text only");
        }
    }
}

void translate_blocks(Reader& r, const TargetRules& t, const Json& content, bool user, Translated& out) {
    if (content.is_string()) {
        const auto& s = content.get_ref<const std::string&>();
        out.text += s;
        out.parts.push_back({{"type", "text"}, {"text", s}});
        return;
    }
    auto in_content = r.at("content");
    if (!content.is_array()) {
        r.wrong_type({}, "a string or an array of content blocks", content);
        return;
    }
    for (std::size_t i = 0; i < content.size() && r.ok(); ++i) {
        auto in_block = r.at(i);
        const Json& b = content[i];
        if (!r.expect(b, Type::object)) {
            return;
        }
        const std::string* type = r.need_string(b, "type");
        if (type == nullptr) {
            return;
        }
        if (*type == "text") {
            // cache_control is a caching hint with no OpenAI form; the text is what matters.
            if (const std::string* s = r.need_string(b, "text")) {
                out.text += *s;
                out.parts.push_back({{"type", "text"}, {"text", *s}});
            }
        } else if (*type == "image") {
            std::string url;
            image_url(r, t, b, url);
            if (!url.empty()) {
                out.parts.push_back({{"type", "image_url"}, {"image_url", {{"url", std::move(url)}}}});
            }
        } else if (*type == "tool_result" && user) {
            const std::string* id = r.need_string(b, "tool_use_id");
            std::string text;
            tool_result_text(r, t, b, text);
            if (r.boolean(b, "is_error").value_or(false) && text.rfind("Error", 0) != 0) {
                text = "Error: " + text;  // OpenAI tool messages have no error flag
            }
            if (id != nullptr) {
                out.tool_results.push_back({{"tool_call_id", *id}, {"content", std::move(text)}});
            }
        } else if (*type == "tool_use" && !user) {
            const std::string* id = r.need_string(b, "id");
            const std::string* name = r.need_string(b, "name");
            const Json* input = r.object(b, "input");
            if (id != nullptr && name != nullptr) {
                out.tool_calls.push_back(
                    {{"id", *id},
                     {"type", "function"},
                     {"function",
                      {{"name", *name}, {"arguments", input != nullptr ? json::to_text(*input) : "{}"}}}});
            }
        } else if (*type == "thinking" || *type == "redacted_thinking") {
            continue;  // earlier thinking is the other model's; OpenAI-format models cannot take it
        } else {
            refuse(r, t, r.path_with("type"), "content blocks of type '" + *type + "' have no OpenAI form");
        }
    }
}

std::string system_text(Reader& r, const TargetRules& t, const Json& sys) {
    if (sys.is_string()) {
        return sys.get_ref<const std::string&>();
    }
    auto in_system = r.at("system");
    if (!sys.is_array()) {
        r.wrong_type({}, "a string or an array of text blocks", sys);
        return {};
    }
    std::string text;
    for (std::size_t i = 0; i < sys.size() && r.ok(); ++i) {
        auto in_block = r.at(i);
        const Json& b = sys[i];
        if (!r.expect(b, Type::object)) {
            break;
        }
        const std::string* type = r.need_string(b, "type");
        if (type != nullptr && *type != "text") {
            refuse(r, t, r.path_with("type"), "system prompts are text");
            break;
        }
        if (const std::string* s = r.need_string(b, "text")) {
            text += text.empty() ? "" : "\n\n";
            text += *s;
        }
    }
    return text;
}

void translate_tools(Reader& r, const TargetRules& t, const Json& in, Json& out) {
    const Json* tools = r.array(in, "tools");
    if (tools == nullptr) {
        return;
    }
    auto in_tools = r.at("tools");
    Json list = Json::array();
    for (std::size_t i = 0; i < tools->size() && r.ok(); ++i) {
        auto in_tool = r.at(i);
        const Json& tool = (*tools)[i];
        if (!r.expect(tool, Type::object)) {
            return;
        }
        if (const std::string* type = r.string(tool, "type"); type != nullptr && *type != "custom") {
            refuse(r, t, r.path_with("type"), "server tools (" + *type + ") run at Anthropic only");
            return;
        }
        const std::string* name = r.need_string(tool, "name");
        const Json* schema = r.need_object(tool, "input_schema");
        const std::string* description = r.string(tool, "description");
        if (name == nullptr || schema == nullptr) {
            return;
        }
        Json fn = {{"name", *name}, {"parameters", *schema}};
        if (description != nullptr) {
            fn["description"] = *description;
        }
        list.push_back({{"type", "function"}, {"function", std::move(fn)}});
    }
    out["tools"] = std::move(list);
}

void translate_tool_choice(Reader& r, const Json& in, Json& out) {
    const Json* tc = r.object(in, "tool_choice");
    if (tc == nullptr) {
        return;
    }
    auto in_choice = r.at("tool_choice");
    const std::string* type = r.need_string(*tc, "type");
    if (type == nullptr) {
        return;
    }
    if (*type == "any") {
        out["tool_choice"] = "required";
    } else if (*type == "none") {
        out["tool_choice"] = "none";
    } else if (*type == "auto") {
        out["tool_choice"] = "auto";
    } else if (*type == "tool") {
        if (const std::string* name = r.need_string(*tc, "name")) {
            out["tool_choice"] = {{"type", "function"}, {"function", {{"name", *name}}}};
        }
    } else {
        r.fail("type", "expected auto, any, tool or none.");
    }
    if (r.boolean(*tc, "disable_parallel_tool_use").value_or(false)) {
        out["parallel_tool_calls"] = false;
    }
}

}  // namespace

std::optional<GatewayError> messages_to_chat_request(const Json& in, std::string_view model, Json& out,
                                                     bool drop_unsupported) {
    Reader r;
    const TargetRules t{"This provider (reached through the OpenAI chat format)", drop_unsupported};
    out = Json::object();
    if (!r.expect(in, Type::object)) {
        return r.client_error();
    }
    out["model"] = model;
    Json messages = Json::array();
    if (const Json* sys = json::find(in, "system")) {
        std::string text = system_text(r, t, *sys);
        if (!text.empty()) {
            messages.push_back({{"role", "system"}, {"content", std::move(text)}});
        }
    }
    if (const Json* list = r.need_array(in, "messages")) {
        auto in_messages = r.at("messages");
        for (std::size_t i = 0; i < list->size() && r.ok(); ++i) {
            auto in_item = r.at(i);
            const Json& m = (*list)[i];
            if (!r.expect(m, Type::object)) {
                break;
            }
            r.only(m, {"role", "content"});
            const std::string* role = r.need_string(m, "role");
            const Json* content = json::find(m, "content");
            if (content == nullptr) {
                r.need_string(m, "content");  // records "missing"
            }
            if (role == nullptr || content == nullptr || r.failed()) {
                break;
            }
            if (*role != "user" && *role != "assistant") {
                r.fail("role", "expected user or assistant.");
                break;
            }
            Translated tr;
            translate_blocks(r, t, *content, *role == "user", tr);
            if (*role == "user") {
                for (auto& res : tr.tool_results) {  // tool results come first, as OpenAI expects
                    messages.push_back({{"role", "tool"},
                                        {"tool_call_id", std::move(res["tool_call_id"])},
                                        {"content", std::move(res["content"])}});
                }
                if (!tr.parts.empty()) {
                    messages.push_back({{"role", "user"}, {"content", std::move(tr.parts)}});
                }
            } else {
                Json msg = {{"role", "assistant"},
                            {"content", tr.text.empty() ? Json(nullptr) : Json(tr.text)}};
                if (!tr.tool_calls.empty()) {
                    msg["tool_calls"] = std::move(tr.tool_calls);
                }
                messages.push_back(std::move(msg));
            }
        }
    }
    out["messages"] = std::move(messages);
    // Anthropic's API requires max_tokens; so does its front door.
    if (const auto max_tokens = r.need_integer(in, "max_tokens")) {
        if (*max_tokens < 1) {
            r.fail("max_tokens", "must be at least 1.");
        }
        out["max_tokens"] = *max_tokens;
    }
    if (const Json* stop = r.array(in, "stop_sequences")) {
        auto in_stop = r.at("stop_sequences");
        for (std::size_t i = 0; i < stop->size(); ++i) {
            auto in_item = r.at(i);
            r.expect((*stop)[i], Type::string);
        }
        out["stop"] = *stop;
    }
    for (const char* key : {"temperature", "top_p"}) {
        if (const auto v = r.number(in, key)) {
            out[key] = *v;
        }
    }
    if (r.integer(in, "top_k")) {
        refuse(r, t, "top_k", "OpenAI's chat format has no top_k");
    }
    if (const Json* meta = r.object(in, "metadata")) {
        auto in_meta = r.at("metadata");
        r.only(*meta, {"user_id"});
        if (const std::string* user = r.string(*meta, "user_id")) {
            out["user"] = *user;
        }
    }
    translate_tools(r, t, in, out);
    translate_tool_choice(r, in, out);
    if (const Json* thinking = r.object(in, "thinking")) {
        auto in_thinking = r.at("thinking");
        const std::string* type = r.need_string(*thinking, "type");
        if (type != nullptr && *type == "enabled") {
            const std::int64_t budget = r.need_integer(*thinking, "budget_tokens").value_or(0);
            out["reasoning_effort"] = budget <= 2048 ? "low" : budget <= 8192 ? "medium" : "high";
        } else if (type != nullptr && *type != "disabled") {
            r.fail("type", "expected enabled or disabled.");
        }
    }
    if (r.boolean(in, "stream").value_or(false)) {
        out["stream"] = true;
        out["stream_options"] = {{"include_usage", true}};
    }
    for (const auto& item : in.items()) {
        static constexpr std::string_view kKnown[] = {
            "model", "messages", "system", "max_tokens",  "stop_sequences", "temperature", "top_p",
            "top_k", "metadata", "tools",  "tool_choice", "thinking",       "stream"};
        if (item.value().is_null() ||
            std::find(std::begin(kKnown), std::end(kKnown), item.key()) != std::end(kKnown)) {
            continue;
        }
        static constexpr std::string_view kAnthropicOnly[] = {"service_tier", "container", "mcp_servers",
                                                              "context_management"};
        if (std::find(std::begin(kAnthropicOnly), std::end(kAnthropicOnly), item.key()) !=
            std::end(kAnthropicOnly)) {
            refuse(r, t, item.key(), "this is an Anthropic feature");
        } else if (!drop_unsupported) {
            r.unknown(item.key());
        }
    }
    if (r.failed()) {
        return r.client_error();
    }
    return std::nullopt;
}

std::optional<GatewayError> chat_to_messages_response(const Json& chat, std::string_view model,
                                                      std::string_view provider, Json& out, Usage& usage) {
    Reader r(Reader::Side::provider);
    Json content = Json::array();
    std::string finish = "stop";
    if (const Json* choices = r.array(chat, "choices"); choices != nullptr && !choices->empty()) {
        auto in_choices = r.at("choices");
        auto in_first = r.at(std::size_t{0});
        const Json& choice = (*choices)[0];
        if (r.expect(choice, Type::object)) {
            if (const std::string* f = r.string(choice, "finish_reason")) {
                finish = *f;
            }
            if (const Json* msg = r.object(choice, "message")) {
                auto in_msg = r.at("message");
                if (const std::string* reasoning = r.string(*msg, "reasoning_content");
                    reasoning != nullptr) {
                    content.push_back({{"type", "thinking"}, {"thinking", *reasoning}, {"signature", ""}});
                }
                if (const std::string* text = r.string(*msg, "content"); text != nullptr && !text->empty()) {
                    content.push_back({{"type", "text"}, {"text", *text}});
                }
                if (const Json* calls = r.array(*msg, "tool_calls")) {
                    auto in_calls = r.at("tool_calls");
                    for (std::size_t i = 0; i < calls->size() && r.ok(); ++i) {
                        auto in_call = r.at(i);
                        const Json& call = (*calls)[i];
                        if (!r.expect(call, Type::object)) {
                            break;
                        }
                        const std::string* id = r.need_string(call, "id");
                        const Json* fn = r.need_object(call, "function");
                        if (id == nullptr || fn == nullptr) {
                            break;
                        }
                        auto in_fn = r.at("function");
                        const std::string* name = r.need_string(*fn, "name");
                        const std::string* args = r.string(*fn, "arguments");
                        Json input;
                        // Models do write broken JSON now and then: that call gets an empty input.
                        if (args == nullptr || !parse_embedded_json(*args, input) || !input.is_object()) {
                            input = Json::object();
                        }
                        if (name != nullptr) {
                            content.push_back({{"type", "tool_use"},
                                               {"id", *id},
                                               {"name", *name},
                                               {"input", std::move(input)}});
                        }
                    }
                }
            }
        }
    }
    usage = Usage{0, 0, 0};
    std::int64_t cached = 0;
    if (const Json* u = r.object(chat, "usage")) {
        auto in_usage = r.at("usage");
        read_chat_usage(r, *u, usage, cached);
    }
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    const std::string id(json::string_or(chat, "id"));
    if (r.failed()) {
        return r.provider_error(provider);
    }
    out = {{"id", id.rfind("msg_", 0) == 0 ? id : "msg_" + id},
           {"type", "message"},
           {"role", "assistant"},
           {"model", model},
           {"content", std::move(content)},
           {"stop_reason", anthropic_stop_reason(finish)},
           {"stop_sequence", nullptr},
           {"usage",
            {{"input_tokens", std::max<std::int64_t>(0, usage.prompt_tokens - cached)},
             {"cache_read_input_tokens", cached},
             {"cache_creation_input_tokens", 0},
             {"output_tokens", usage.completion_tokens}}}};
    return std::nullopt;
}

bool MessagesPassthroughStream::on_event(const sse::Event& ev, std::string& out) {
    // Only the events that carry usage (and errors) are parsed; deltas pass without a look.
    if (ev.event == "error") {
        Json data;
        if (!json::parse_untrusted(ev.data, data)) {
            data = Json::object();
        }
        return fail(anthropic_stream_error(data));
    }
    if (ev.event == "message_start" || ev.event == "message_delta") {
        Json data;
        if (!json::parse_untrusted(ev.data, data) || !data.is_object()) {
            return fail_invalid("'" + ev.event + "' event that is not a JSON object");
        }
        Reader r(Reader::Side::provider);
        const Json* holder = &data;
        if (ev.event == "message_start") {
            holder = r.need_object(data, "message");
        }
        if (holder != nullptr) {
            if (const Json* u = r.object(*holder, "usage")) {
                auto in_usage = r.at("usage");
                AnthropicUsage au;
                read_anthropic_usage(r, *u, au);
                acc_.merge(au);
            }
        }
        if (r.failed()) {
            return fail_invalid("'" + ev.event + "' event: " + r.error_message());
        }
        usage_ = acc_.usage();
    } else if (ev.event == "message_stop") {
        done_ = true;
    }
    sse::encode(ev, out);
    return true;
}

}  // namespace sluice
