#include "providers/mock_provider.hpp"

#include <cmath>
#include <cstring>
#include <sstream>

#include <nlohmann/json.hpp>

#include "api/chat_request.hpp"
#include "json/json_dom.hpp"
#include "json/json_reader.hpp"
#include "util/base64.hpp"

namespace sluice {

namespace {

using Json = nlohmann::json;

std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 1469598103934665603ULL) {
    for (const char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

std::string short_id(std::string_view prefix, std::string_view seed) {
    static constexpr char kAlnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    std::uint64_t h = fnv1a(seed);
    std::string id(prefix);
    for (int i = 0; i < 20; ++i) {
        id.push_back(kAlnum[h % 36]);
        h = h / 36 + fnv1a(id);
    }
    return id;
}

std::int64_t count_words(std::string_view s) {
    std::int64_t n = 0;
    bool in_word = false;
    for (const char c : s) {
        const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
        if (!space && !in_word) {
            ++n;
        }
        in_word = !space;
    }
    return n;
}

/// The text of a message (text parts joined by spaces).
std::string text_of(const ChatMessage& m) {
    if (m.content_is_text) {
        return std::string(m.text);
    }
    std::string out;
    for (const auto& part : m.parts) {
        if (part.kind == ChatPart::Kind::text) {
            if (!out.empty()) {
                out += ' ';
            }
            out += part.text;
        }
    }
    return out;
}

std::vector<std::string> split_words(const std::string& text, int chunks) {
    std::vector<std::string> pieces;
    if (chunks > 0) {
        // Exactly `chunks` pieces, cycling through the text.
        const std::size_t n = static_cast<std::size_t>(chunks);
        const std::size_t size = std::max<std::size_t>(1, text.size() / n);
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t b = std::min(text.size(), i * size);
            const std::size_t e = i + 1 == n ? text.size() : std::min(text.size(), b + size);
            pieces.push_back(text.substr(b, e - b));
        }
        return pieces;
    }
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto sp = text.find(' ', pos);
        sp = sp == std::string::npos ? text.size() : sp + 1;
        pieces.push_back(text.substr(pos, sp - pos));
        pos = sp;
    }
    if (pieces.empty()) {
        pieces.emplace_back();
    }
    return pieces;
}

/// A sample value satisfying `schema`'s required properties (the schema came from a depth-capped
/// body; every accessor tolerates any JSON).
Json sample_for_schema(const Json& schema) {
    const std::string_view type = json::string_or(schema, "type", "string");
    if (type == "number" || type == "integer") {
        return 1;
    }
    if (type == "boolean") {
        return true;
    }
    if (type == "array") {
        return Json::array();
    }
    if (type == "object") {
        Json obj = Json::object();
        const Json* props = json::find(schema, "properties");
        const Json* required = json::find(schema, "required");
        if (props != nullptr && props->is_object() && required != nullptr && required->is_array()) {
            for (const auto& r : *required) {
                if (!r.is_string()) {
                    continue;
                }
                const std::string& name = r.get_ref<const std::string&>();
                if (const Json* prop = json::find(*props, name)) {
                    obj[name] = sample_for_schema(*prop);
                }
            }
        }
        return obj;
    }
    if (const Json* values = json::find(schema, "enum");
        values != nullptr && values->is_array() && !values->empty()) {
        return (*values)[0];
    }
    return "mock";
}

struct ChatPlan {
    std::string content;
    bool tool_call = false;
    std::string tool_name;
    std::string tool_arguments;
    std::string tool_id;
    std::int64_t prompt_tokens = 0;
};

ChatPlan plan_chat(const ChatRequestView& req, const MockOptions& opts) {
    ChatPlan plan;
    std::string last_user;
    std::string_view last_role;
    for (const ChatMessage& m : req.messages) {
        const std::string text = text_of(m);
        plan.prompt_tokens += count_words(text) + 3;
        last_role = m.role;
        if (last_role == "user") {
            last_user = text;
        }
    }
    const ChatTool* tool = nullptr;
    for (const ChatTool& t : req.tools) {
        if (t.function) {
            tool = &t;
            break;
        }
    }
    const bool tools_off = req.tool_choice.mode == ChatToolChoice::Mode::none;
    if (tool != nullptr && !tools_off && last_role != "tool") {
        plan.tool_call = true;
        plan.tool_name = tool->name.empty() ? "tool" : std::string(tool->name);
        plan.tool_arguments = json::to_text(
            sample_for_schema(tool->parameters != nullptr ? *tool->parameters : Json::object()));
        plan.tool_id = short_id("call_", plan.tool_name + last_user);
        return plan;
    }
    if (!opts.content.empty()) {
        plan.content = opts.content;
    } else if (last_role == "tool") {
        plan.content = "The tool answered; that is all the mock provider knows.";
    } else {
        // Cut at a character boundary: the echo becomes JSON.
        std::size_t cut = std::min<std::size_t>(200, last_user.size());
        while (cut > 0 && cut < last_user.size() &&
               (static_cast<unsigned char>(last_user[cut]) & 0xC0) == 0x80) {
            --cut;
        }
        plan.content = "This is a mock answer from sluice. You said: " + last_user.substr(0, cut);
    }
    return plan;
}

std::int64_t completion_tokens(const ChatPlan& plan) {
    return plan.tool_call ? count_words(plan.tool_arguments) + 5 : count_words(plan.content);
}

Json usage_json(std::int64_t prompt, std::int64_t completion) {
    return {
        {"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

void sse_line(std::string& out, const Json& chunk) {
    out += "data: ";
    json::append_text(out, chunk);
    out += "\n\n";
}

bool wants_usage(const Json& req) {
    const Json* opts = json::find(req, "stream_options");
    const Json* iu = opts != nullptr ? json::find(*opts, "include_usage") : nullptr;
    return iu != nullptr && iu->is_boolean() && iu->get_ref<const Json::boolean_t&>();
}

LocalResponse client_error(const json::Reader& r) {
    LocalResponse resp;
    resp.status = 400;
    resp.body = r.client_error().to_json();
    return resp;
}

LocalResponse chat(const Json& req, const MockOptions& opts, std::string_view body) {
    // Checked like OpenAI checks a request: a wrong type anywhere is a 400 naming its path.
    json::Reader reader;
    ChatRequestView view;
    read_chat_request(req, reader, view);
    if (reader.failed()) {
        return client_error(reader);
    }
    const ChatPlan plan = plan_chat(view, opts);
    const std::string model(json::string_or(req, "model", "mock"));
    const std::string id = short_id("chatcmpl-", body);
    constexpr std::int64_t kCreated = 1700000000;
    const bool stream = view.stream;
    const std::int64_t completion = completion_tokens(plan);
    LocalResponse r;
    if (!stream) {
        Json message = {{"role", "assistant"}};
        if (plan.tool_call) {
            message["content"] = nullptr;
            message["tool_calls"] =
                Json::array({{{"id", plan.tool_id},
                              {"type", "function"},
                              {"function", {{"name", plan.tool_name}, {"arguments", plan.tool_arguments}}}}});
        } else {
            message["content"] = plan.content;
        }
        Json resp = {{"id", id},
                     {"object", "chat.completion"},
                     {"created", kCreated},
                     {"model", model},
                     {"choices", Json::array({{{"index", 0},
                                               {"message", message},
                                               {"logprobs", nullptr},
                                               {"finish_reason", plan.tool_call ? "tool_calls" : "stop"}}})},
                     {"usage", usage_json(plan.prompt_tokens, completion)},
                     {"system_fingerprint", "fp_sluice_mock"}};
        r.body = json::to_text(resp);
        return r;
    }
    const bool include_usage = wants_usage(req);
    r.content_type = "text/event-stream";
    auto chunk = [&](Json delta, Json finish) {
        Json c = {{"id", id},
                  {"object", "chat.completion.chunk"},
                  {"created", kCreated},
                  {"model", model},
                  {"system_fingerprint", "fp_sluice_mock"},
                  {"choices", Json::array({{{"index", 0},
                                            {"delta", std::move(delta)},
                                            {"logprobs", nullptr},
                                            {"finish_reason", std::move(finish)}}})}};
        if (include_usage) {
            c["usage"] = nullptr;
        }
        return c;
    };
    sse_line(r.body,
             chunk({{"role", "assistant"}, {"content", plan.tool_call ? Json(nullptr) : Json("")}}, nullptr));
    if (plan.tool_call) {
        sse_line(r.body,
                 chunk({{"tool_calls",
                         Json::array({{{"index", 0},
                                       {"id", plan.tool_id},
                                       {"type", "function"},
                                       {"function", {{"name", plan.tool_name}, {"arguments", ""}}}}})}},
                       nullptr));
        // Argument deltas in small pieces, as real providers stream them.
        for (std::size_t i = 0; i < plan.tool_arguments.size(); i += 4) {
            sse_line(
                r.body,
                chunk({{"tool_calls",
                        Json::array({{{"index", 0},
                                      {"function", {{"arguments", plan.tool_arguments.substr(i, 4)}}}}})}},
                      nullptr));
        }
    } else {
        for (const auto& piece : split_words(plan.content, opts.stream_chunks)) {
            sse_line(r.body, chunk({{"content", piece}}, nullptr));
        }
    }
    sse_line(r.body, chunk(Json::object(), plan.tool_call ? "tool_calls" : "stop"));
    if (include_usage) {
        Json u = {{"id", id},
                  {"object", "chat.completion.chunk"},
                  {"created", kCreated},
                  {"model", model},
                  {"system_fingerprint", "fp_sluice_mock"},
                  {"choices", Json::array()},
                  {"usage", usage_json(plan.prompt_tokens, completion)}};
        sse_line(r.body, u);
    }
    r.body += "data: [DONE]\n\n";
    return r;
}

LocalResponse completions(const Json& req, const MockOptions& opts, std::string_view body) {
    json::Reader reader;
    std::string prompt;
    if (const Json* p = json::find(req, "prompt")) {
        if (p->is_string()) {
            prompt = p->get_ref<const std::string&>();
        } else if (p->is_array() && !p->empty() && (*p)[0].is_string()) {
            prompt = (*p)[0].get_ref<const std::string&>();
        } else if (!p->is_array()) {
            reader.wrong_type("prompt", "a string or an array", *p);
        }
    }
    const bool stream = reader.boolean(req, "stream").value_or(false);
    if (reader.failed()) {
        return client_error(reader);
    }
    std::size_t cut = std::min<std::size_t>(200, prompt.size());
    while (cut > 0 && cut < prompt.size() && (static_cast<unsigned char>(prompt[cut]) & 0xC0) == 0x80) {
        --cut;
    }
    const std::string text =
        opts.content.empty() ? " and this is the mock completion of: " + prompt.substr(0, cut) : opts.content;
    const std::string model(json::string_or(req, "model", "mock"));
    const std::string id = short_id("cmpl-", body);
    const std::int64_t p = count_words(prompt);
    const std::int64_t c = count_words(text);
    LocalResponse r;
    if (!stream) {
        Json resp = {
            {"id", id},
            {"object", "text_completion"},
            {"created", 1700000000},
            {"model", model},
            {"choices",
             Json::array({{{"text", text}, {"index", 0}, {"logprobs", nullptr}, {"finish_reason", "stop"}}})},
            {"usage", usage_json(p, c)}};
        r.body = json::to_text(resp);
        return r;
    }
    const bool include_usage = wants_usage(req);
    r.content_type = "text/event-stream";
    const auto pieces = split_words(text, opts.stream_chunks);
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        Json chunk = {
            {"id", id},
            {"object", "text_completion"},
            {"created", 1700000000},
            {"model", model},
            {"choices",
             Json::array({{{"text", pieces[i]},
                           {"index", 0},
                           {"logprobs", nullptr},
                           {"finish_reason", i + 1 == pieces.size() ? Json("stop") : Json(nullptr)}}})}};
        if (include_usage) {
            chunk["usage"] = nullptr;
        }
        sse_line(r.body, chunk);
    }
    if (include_usage) {
        sse_line(r.body, {{"id", id},
                          {"object", "text_completion"},
                          {"created", 1700000000},
                          {"model", model},
                          {"choices", Json::array()},
                          {"usage", usage_json(p, c)}});
    }
    r.body += "data: [DONE]\n\n";
    return r;
}

LocalResponse embeddings(const Json& req, const MockOptions& opts) {
    json::Reader reader;
    std::vector<std::string> inputs;
    const Json* input = json::find(req, "input");
    auto add = [&](const Json& v) {
        if (v.is_string()) {
            inputs.push_back(v.get_ref<const std::string&>());
        } else {
            inputs.push_back(json::to_text(v));  // token arrays
        }
    };
    if (input == nullptr) {
        reader.need_string(req, "input");  // records "missing"
    } else if (input->is_array() && !input->empty() && !(*input)[0].is_number()) {
        for (const auto& v : *input) {
            add(v);
        }
    } else if (input->is_string() || input->is_array()) {
        add(*input);
    } else {
        reader.wrong_type("input", "a string or an array", *input);
    }
    int dims = opts.embedding_dimensions;
    if (const auto d = reader.integer(req, "dimensions")) {
        dims = static_cast<int>(std::clamp<std::int64_t>(*d, 1, 8192));
    }
    const std::string* format = reader.string(req, "encoding_format");
    if (reader.failed()) {
        return client_error(reader);
    }
    const bool b64 = format != nullptr && *format == "base64";
    Json data = Json::array();
    std::int64_t tokens = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        tokens += std::max<std::int64_t>(1, count_words(inputs[i]));
        std::vector<float> v(static_cast<std::size_t>(dims));
        double norm = 0;
        std::uint64_t h = fnv1a(inputs[i]);
        for (auto& x : v) {
            h = h * 6364136223846793005ULL + 1442695040888963407ULL;
            x = static_cast<float>(static_cast<double>(h >> 11) / 9007199254740992.0 * 2.0 - 1.0);
            norm += static_cast<double>(x) * x;
        }
        norm = std::sqrt(norm);
        for (auto& x : v) {
            x = static_cast<float>(x / norm);
        }
        Json item = {{"object", "embedding"}, {"index", i}};
        if (b64) {
            item["embedding"] = base64_floats(v);
        } else {
            item["embedding"] = v;
        }
        data.push_back(std::move(item));
    }
    LocalResponse r;
    r.body = json::to_text(Json{{"object", "list"},
                                {"data", std::move(data)},
                                {"model", std::string(json::string_or(req, "model", "mock"))},
                                {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
    return r;
}

}  // namespace

std::string mock_tool_arguments(std::string_view schema_json) {
    Json schema;
    if (!json::parse_untrusted(schema_json, schema)) {
        schema = Json::object();
    }
    return json::to_text(sample_for_schema(schema));
}

LocalResponse mock_models(const MockOptions& opts) {
    Json data = Json::array();
    for (const auto& m : opts.models) {
        data.push_back(
            {{"id", m}, {"object", "model"}, {"created", 1700000000}, {"owned_by", "sluice-mock"}});
    }
    LocalResponse r;
    r.body = json::to_text(Json{{"object", "list"}, {"data", std::move(data)}});
    return r;
}

LocalResponse mock_generate(Endpoint endpoint, std::string_view body, const MockOptions& opts) {
    Json req;
    if (!json::parse_untrusted(body, req) || !req.is_object()) {
        LocalResponse r;
        r.status = 400;
        r.body = GatewayError::invalid_json("The mock provider could not parse the request.").to_json();
        return r;
    }
    switch (endpoint) {
        case Endpoint::chat_completions: return chat(req, opts, body);
        case Endpoint::completions: return completions(req, opts, body);
        case Endpoint::embeddings: return embeddings(req, opts);
        case Endpoint::models: return mock_models(opts);
        case Endpoint::messages:  // translated to chat before it gets here
        case Endpoint::count_tokens: break;
    }
    LocalResponse r;
    r.status = 400;
    r.body =
        GatewayError::bad_request("The mock provider cannot answer this endpoint.", "unsupported_endpoint")
            .to_json();
    return r;
}

MockProvider::MockProvider(const ProviderConfig& cfg) : ConfiguredProvider(cfg), wire_(cfg.name) {
    opts_.models = cfg.mock_models.empty()
                       ? std::vector<std::string>{"mock-gpt-4o", "mock-gpt-4o-mini", "mock-embedding"}
                       : cfg.mock_models;
    opts_.embedding_dimensions = cfg.mock_embedding_dimensions;
}

std::optional<GatewayError> MockProvider::build_request(const ApiRequest& req,
                                                        std::string_view upstream_model,
                                                        UpstreamRequest& out) const {
    out.target = "/v1";
    out.target += OpenAiWire::path(req.endpoint);
    out.headers.clear();
    add_config_headers(out);
    return wire_.build(req, upstream_model, out);
}

std::optional<UpstreamRequest> MockProvider::models_request() const {
    return get_request("/v1/models");
}

LocalResponse MockProvider::respond_locally(const UpstreamRequest& req) const {
    if (req.method == "GET") {
        return mock_models(opts_);
    }
    Endpoint e = Endpoint::chat_completions;
    if (req.target.ends_with("/embeddings")) {
        e = Endpoint::embeddings;
    } else if (req.target.ends_with("/completions") && !req.target.ends_with("/chat/completions")) {
        e = Endpoint::completions;
    }
    return mock_generate(e, req.body, opts_);
}

}  // namespace sluice
