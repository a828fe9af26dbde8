#include "filters/body_view.hpp"

#include "json/json_dom.hpp"
#include "json/json_reader.hpp"
#include "stream/client_encoders.hpp"

namespace sluice {

namespace {

using Json = nlohmann::json;
using Kind = StreamDelta::Kind;

/// The view and, per part, the JSON node its text came from.
struct View {
    ResponseBody body;
    std::vector<Json*> nodes;
    std::vector<std::string> original;

    void add(Kind kind, int choice, int tool, Json& node, std::string text) {
        body.parts.push_back(BodyPart{kind, choice, tool, text});
        nodes.push_back(&node);
        original.push_back(std::move(text));
    }
    void add_string(Kind kind, int choice, int tool, Json& node) {
        if (node.is_string()) {
            add(kind, choice, tool, node, node.get_ref<const std::string&>());
        }
    }
};

/// A token count from a usage object; -1 when absent or not a non-negative integer.
std::int64_t count(const Json& obj, const char* key) {
    json::Reader r(json::Reader::Side::provider);
    const auto v = r.integer(obj, key);
    return v && *v >= 0 ? *v : -1;
}

/// An OpenAI message's content: a string, or an array of parts of which the text ones count.
void read_openai_content(View& v, int choice, Json& content) {
    if (content.is_string()) {
        v.add_string(Kind::text, choice, 0, content);
        return;
    }
    if (!content.is_array()) {
        return;
    }
    for (Json& part : content) {
        if (part.is_object() && json::string_or(part, "type", "") == "text") {
            if (Json* text = json::find_mut(part, "text")) {
                v.add_string(Kind::text, choice, 0, *text);
            }
        }
    }
}

void read_openai(View& v, Json& doc) {
    Json* choices = json::find_mut(doc, "choices");
    if (choices != nullptr && choices->is_array()) {
        for (std::size_t i = 0; i < choices->size() && i < 128; ++i) {
            Json& choice = (*choices)[i];
            if (!choice.is_object()) {
                continue;
            }
            const int c = static_cast<int>(i);
            v.body.finish_reasons.emplace_back(json::string_or(choice, "finish_reason", ""));
            Json* message = json::find_mut(choice, "message");
            if (message == nullptr || !message->is_object()) {
                continue;
            }
            if (Json* reasoning = json::find_mut(*message, "reasoning_content")) {
                v.add_string(Kind::reasoning, c, 0, *reasoning);
            }
            if (Json* content = json::find_mut(*message, "content")) {
                read_openai_content(v, c, *content);
            }
            Json* calls = json::find_mut(*message, "tool_calls");
            for (std::size_t t = 0; calls != nullptr && calls->is_array() && t < calls->size(); ++t) {
                Json* fn = (*calls)[t].is_object() ? json::find_mut((*calls)[t], "function") : nullptr;
                Json* args = fn != nullptr && fn->is_object() ? json::find_mut(*fn, "arguments") : nullptr;
                if (args != nullptr) {
                    v.add_string(Kind::tool_args, c, static_cast<int>(t), *args);
                }
            }
        }
    }
    if (const Json* u = json::find(doc, "usage"); u != nullptr && u->is_object()) {
        v.body.usage =
            Usage{count(*u, "prompt_tokens"), count(*u, "completion_tokens"), count(*u, "total_tokens")};
    }
}

void read_anthropic(View& v, Json& doc) {
    v.body.finish_reasons.push_back(openai_finish_reason(json::string_or(doc, "stop_reason", "")));
    Json* content = json::find_mut(doc, "content");
    int tool = 0;
    for (std::size_t i = 0; content != nullptr && content->is_array() && i < content->size(); ++i) {
        Json& block = (*content)[i];
        if (!block.is_object()) {
            continue;
        }
        const std::string_view type = json::string_or(block, "type", "");
        if (type == "text") {
            if (Json* text = json::find_mut(block, "text")) {
                v.add_string(Kind::text, 0, 0, *text);
            }
        } else if (type == "thinking") {
            if (Json* thinking = json::find_mut(block, "thinking")) {
                v.add_string(Kind::reasoning, 0, 0, *thinking);
            }
        } else if (type == "tool_use") {
            if (Json* input = json::find_mut(block, "input")) {
                v.add(Kind::tool_args, 0, tool, *input, json::to_text(*input));
            }
            ++tool;
        }
    }
    if (const Json* u = json::find(doc, "usage"); u != nullptr && u->is_object()) {
        const std::int64_t in = count(*u, "input_tokens");
        const std::int64_t cache_read = std::max<std::int64_t>(0, count(*u, "cache_read_input_tokens"));
        const std::int64_t cache_write = std::max<std::int64_t>(0, count(*u, "cache_creation_input_tokens"));
        const std::int64_t out = count(*u, "output_tokens");
        const std::int64_t prompt = in < 0 ? -1 : in + cache_read + cache_write;
        v.body.usage = Usage{prompt, out, prompt < 0 || out < 0 ? -1 : prompt + out};
    }
}

GatewayError filter_error(std::string_view filter, std::string_view what) {
    GatewayError e = GatewayError::internal("The response filter '" + std::string(filter) + "' " +
                                            std::string(what) + ".");
    e.code = "response_filter_error";
    return e;
}

/// Writes the parts `filter` edited back into the document; false (with `error`) when an edit
/// is invalid. true with `changed` set when any part changed.
bool write_back(View& v, bool anthropic, std::string_view filter, bool& changed, GatewayError& error) {
    if (v.body.parts.size() != v.nodes.size()) {
        error = filter_error(filter, "added or removed parts of the answer (it may only edit them)");
        return false;
    }
    for (std::size_t i = 0; i < v.body.parts.size(); ++i) {
        const BodyPart& p = v.body.parts[i];
        if (p.text == v.original[i]) {
            continue;
        }
        changed = true;
        if (p.kind == Kind::tool_args && anthropic) {
            Json input;
            if (!json::parse_untrusted(p.text, input) || !input.is_object()) {
                error = filter_error(filter, "left a tool call's arguments that are not a JSON object");
                return false;
            }
            *v.nodes[i] = std::move(input);
        } else {
            *v.nodes[i] = p.text;
        }
        v.original[i] = p.text;
    }
    return true;
}

}  // namespace

std::optional<GatewayError> filter_response_body(const std::vector<const Filter*>& filters,
                                                 const RequestContext& ctx, std::string& body) {
    Json doc;
    if (!json::parse_untrusted(body, doc) || !doc.is_object()) {
        return GatewayError::upstream_error(
            "The provider's answer is not a JSON object the response filters can read.",
            "upstream_invalid_response");
    }
    const bool anthropic = anthropic_format(ctx.api.endpoint);
    View v;
    if (anthropic) {
        read_anthropic(v, doc);
    } else {
        read_openai(v, doc);
    }
    bool changed = false;
    for (const Filter* f : filters) {
        if (auto refused = f->on_response_body(ctx, v.body)) {
            return refused;
        }
        GatewayError bad;
        if (!write_back(v, anthropic, f->name(), changed, bad)) {
            return bad;
        }
    }
    if (changed) {
        body = json::to_text(doc);
    }
    return std::nullopt;
}

}  // namespace sluice
