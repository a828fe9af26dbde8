#include "providers/openai_wire.hpp"

#include <algorithm>

#include "api/api_request.hpp"
#include "json/json_dom.hpp"
#include "json/json_reader.hpp"
#include "json/json_scan.hpp"
#include "providers/configured_provider.hpp"
#include "sse/sse.hpp"
#include "stream/client_encoders.hpp"
#include "util/strings.hpp"

namespace sluice {

namespace {

struct Splice {
    std::size_t begin;
    std::size_t end;
    std::string text;
};

/// True when a choice of the answer finished with content_filter. Only a body that holds the
/// word is parsed further.
bool has_content_filter_finish(std::string_view choices) {
    if (choices.find("content_filter") == std::string_view::npos) {
        return false;
    }
    json::Json list;
    if (!json::parse_untrusted(choices, list) || !list.is_array()) {
        return false;
    }
    return std::any_of(list.begin(), list.end(), [](const json::Json& c) {
        return c.is_object() && json::string_or(c, "finish_reason") == "content_filter";
    });
}

}  // namespace

std::string_view OpenAiWire::path(Endpoint e) noexcept {
    switch (e) {
        case Endpoint::chat_completions: return "/chat/completions";
        case Endpoint::completions: return "/completions";
        case Endpoint::embeddings: return "/embeddings";
        case Endpoint::models: return "/models";
        case Endpoint::messages: return "/chat/completions";  // (the front door sends chat)
        case Endpoint::count_tokens: return "/";
    }
    return "/";
}

std::optional<GatewayError> OpenAiWire::build(const ApiRequest& req, std::string_view upstream_model,
                                              UpstreamRequest& out) const {
    if (req.endpoint == Endpoint::count_tokens) {
        return GatewayError::bad_request("Provider '" + provider_ +
                                             "' cannot count tokens; "
                                             "/v1/messages/count_tokens needs an anthropic provider.",
                                         "unsupported_endpoint");
    }
    out.method = "POST";
    if (req.stream) {
        out.headers.emplace_back("Accept", "text/event-stream");
    }
    out.body = rewrite_openai_body(req, upstream_model);
    return std::nullopt;
}

std::unique_ptr<StreamRelay> OpenAiWire::stream_relay(const ApiRequest& req, StreamOutput out) {
    if (out.passthrough == StreamOutput::Passthrough::openai) {
        return std::make_unique<OpenAiStreamRelay>(req.client_wants_usage);  // chunks as they came
    }
    return std::make_unique<OpenAiChunkDecoder>(std::move(out.sink));
}

std::optional<GatewayError> OpenAiWire::read_answer(std::string_view body, Answer& answer) const {
    std::vector<json::Member> top;
    json::ScanError err;
    answer = Answer{};
    if (!json::scan(body, &top, err)) {
        return std::nullopt;  // passed through as it came
    }
    const auto* u = json::find(top, "usage");
    if (u != nullptr && u->kind == json::Kind::object && !parse_usage_object(u->value, answer.usage)) {
        return GatewayError::upstream_error(
            "Provider '" + provider_ + "' sent token counts that are not non-negative integers.",
            "upstream_invalid_response");
    }
    const auto* choices = json::find(top, "choices");
    answer.refused =
        choices != nullptr && choices->kind == json::Kind::array && has_content_filter_finish(choices->value);
    return std::nullopt;
}

std::string splice_model(const ApiRequest& req, std::string_view upstream_model) {
    if (upstream_model == req.model) {
        return req.body;
    }
    std::string out = req.body.substr(0, req.model_value.first);
    append_json_string(out, upstream_model);
    out.append(req.body, req.model_value.second, std::string::npos);
    return out;
}

std::string rewrite_openai_body(const ApiRequest& req, std::string_view upstream_model) {
    std::vector<Splice> splices;
    if (upstream_model != req.model) {
        std::string quoted;
        append_json_string(quoted, upstream_model);
        splices.push_back({req.model_value.first, req.model_value.second, std::move(quoted)});
    }
    if (req.stream && !req.client_wants_usage) {
        if (req.stream_options_member) {
            // Keep the client's other options; force include_usage on.
            const auto [b, e] = *req.stream_options_member;
            const std::string_view member(req.body.data() + b, e - b);
            std::vector<json::Member> top;
            json::ScanError err;
            std::string replacement = "\"stream_options\":{";
            const auto colon = member.find(':');
            const auto value = member.substr(colon + 1);
            std::vector<json::Member> opts;
            if (json::scan(value, &opts, err)) {
                for (const auto& o : opts) {
                    if (o.key_is("include_usage")) {
                        continue;
                    }
                    replacement.append(value.substr(o.begin, o.end - o.begin));
                    replacement.push_back(',');
                }
            }
            replacement += "\"include_usage\":true}";
            splices.push_back({b, e, std::move(replacement)});
        } else {
            const auto close = req.body.find_last_of('}');
            const bool empty_object = req.member_spans.empty();
            splices.push_back(
                {close, close,
                 std::string(empty_object ? "" : ",") + "\"stream_options\":{\"include_usage\":true}"});
        }
    }
    if (splices.empty()) {
        return req.body;
    }
    std::sort(splices.begin(), splices.end(),
              [](const Splice& a, const Splice& b) { return a.begin < b.begin; });
    std::string out;
    out.reserve(req.body.size() + 64);
    std::size_t pos = 0;
    for (const auto& s : splices) {
        out.append(req.body, pos, s.begin - pos);
        out += s.text;
        pos = s.end;
    }
    out.append(req.body, pos, std::string::npos);
    return out;
}

std::span<const std::string_view> OpenAiStreamRelay::plain_data_markers() const {
    // Only events that carry usage or an error need their JSON read (on_event). A key can be
    // spelled with escapes ("\u0075sage"), so any \u00XX escape sends an event there too (one
    // marker for both escaped letter ranges: a pass over each read per marker is the cost).
    static constexpr std::string_view kMarkers[] = {"\"usage\"", "\"error\"", "\\u00"};
    return kMarkers;
}

bool OpenAiStreamRelay::on_plain_data(std::string_view data, std::string_view raw, std::string& out) {
    if (data == "[DONE]") {
        done_ = true;
    }
    out += raw;
    return true;
}

bool OpenAiStreamRelay::on_event(const sse::Event& ev, std::string& out) {
    if (ev.comment_only) {
        sse::encode(ev, out);
        return true;
    }
    if (ev.data == "[DONE]") {
        done_ = true;
        sse::encode(ev, out);
        return true;
    }
    top_.clear();
    json::ScanError err;
    if (!ev.has_data || !json::scan(ev.data, &top_, err)) {
        sse::encode(ev, out);
        return true;
    }
    if (const json::Member* error = json::find(top_, "error");
        error != nullptr && error->kind == json::Kind::object) {
        // The provider reported an error in the stream: it ends here, re-worded by sluice (and
        // scrubbed of secrets) like every provider error.
        GatewayError e = error_from_json_body(502, ev.data);
        if (e.type == "rate_limit_error" || e.code.find("rate_limit") != std::string::npos) {
            e.status = 429;
            e.type = "rate_limit_error";
        } else if (e.type.empty()) {
            e.type = "server_error";
        }
        return fail(std::move(e));
    }
    const json::Member* usage = json::find(top_, "usage");
    if (usage != nullptr && usage->kind == json::Kind::object) {
        if (!parse_usage_object(usage->value, usage_)) {
            return fail_invalid("token counts that are not non-negative integers");
        }
    }
    if (client_wants_usage_ || usage == nullptr) {
        sse::encode(ev, out);
        return true;
    }
    // sluice asked for usage on the client's behalf: hide it again.
    const json::Member* choices = json::find(top_, "choices");
    if (usage->kind == json::Kind::object && choices != nullptr && choices->kind == json::Kind::array &&
        choices->value.find_first_not_of(" \t\r\n", 1) == choices->value.size() - 1) {
        return true;  // the usage-only chunk
    }
    // Splice `"usage":...` out together with one adjacent comma.
    const std::string& d = ev.data;
    std::size_t b = usage->begin;
    std::size_t e = usage->end;
    const auto is_ws = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
    std::size_t after = e;
    while (after < d.size() && is_ws(d[after])) {
        ++after;
    }
    if (after < d.size() && d[after] == ',') {
        e = after + 1;
    } else {
        std::size_t before = b;
        while (before > 0 && is_ws(d[before - 1])) {
            --before;
        }
        if (before > 0 && d[before - 1] == ',') {
            b = before - 1;
        }
    }
    sse::encode_fields(ev, out);
    // The JSON text of an OpenAI chunk is one line; a multi-line one is re-split on its newlines.
    const std::string_view head(d.data(), b);
    const std::string_view tail(d.data() + e, d.size() - e);
    if (d.find('\n') == std::string::npos) {
        out += "data: ";
        out += head;
        out += tail;
        out += "\n\n";
    } else {
        sse::Event copy;  // fields already written: only the data lines are encoded
        copy.has_data = true;
        copy.data.reserve(head.size() + tail.size());
        copy.data.append(head);
        copy.data.append(tail);
        sse::encode(copy, out);
    }
    return true;
}

}  // namespace sluice
