#include "providers/translate_common.hpp"

#include <algorithm>

namespace sluice {

using Json = nlohmann::json;

void refuse(json::Reader& r, const TargetRules& t, std::string path, std::string_view why) {
    if (t.drop_unsupported) {
        return;
    }
    std::string msg(t.label);
    msg += " cannot represent this: ";
    msg += why;
    msg += " (set drop_unsupported_params on the provider to drop such fields instead).";
    r.unsupported_at(std::move(path), msg);
}

void refuse_openai_only(json::Reader& r, const TargetRules& t, const ChatRequestView& v, SamplingSupport s) {
    if (!s.n && v.n && *v.n != 1) {
        refuse(r, t, "n", "it returns one choice per request, so n must be 1");
    }
    if (!s.penalties && v.presence_penalty && *v.presence_penalty != 0.0) {
        refuse(r, t, "presence_penalty", "it has no presence penalty");
    }
    if (!s.penalties && v.frequency_penalty && *v.frequency_penalty != 0.0) {
        refuse(r, t, "frequency_penalty", "it has no frequency penalty");
    }
    if (!s.seed && v.seed) {
        refuse(r, t, "seed", "it has no sampling seed");
    }
    if (v.logprobs && *v.logprobs) {
        refuse(r, t, "logprobs", "sluice does not translate log probabilities");
    }
    if (v.top_logprobs) {
        refuse(r, t, "top_logprobs", "sluice does not translate log probabilities");
    }
    if (v.logit_bias != nullptr && !v.logit_bias->empty()) {
        refuse(r, t, "logit_bias", "it has no token biases");
    }
    if (v.store && *v.store) {
        refuse(r, t, "store", "stored completions are an OpenAI feature");
    }
    for (const std::string_view key : v.openai_only) {
        refuse(r, t, std::string(key), "this OpenAI feature has no equivalent");
    }
}

void refuse_message_names(json::Reader& r, const TargetRules& t, const ChatRequestView& v) {
    for (const auto& m : v.messages) {
        if (!m.name.empty()) {
            refuse(r, t, message_path(m.index) + ".name", "messages have no participant names");
            return;
        }
    }
}

std::string message_path(std::size_t m) {
    return "messages[" + std::to_string(m) + "]";
}

std::string part_path(std::size_t m, std::size_t p) {
    return message_path(m) + ".content[" + std::to_string(p) + "]";
}

std::string call_path(std::size_t m, std::size_t c) {
    return message_path(m) + ".tool_calls[" + std::to_string(c) + "]";
}

void append_turn(Json& turns, std::string_view role, Json items, const char* items_key) {
    if (items.empty()) {
        return;
    }
    // Our own documents: every turn is an object with a string role and an array of items.
    if (!turns.empty() && json::string_or(turns.back(), "role") == role) {
        Json& list = turns.back()[items_key];
        for (auto& item : items) {
            list.push_back(std::move(item));
        }
        return;
    }
    Json turn = Json::object();
    turn["role"] = role;
    turn[items_key] = std::move(items);
    turns.push_back(std::move(turn));
}

bool tool_call_input(json::Reader& r, const ChatMessage& m, const ChatToolCall& c, std::string_view target,
                     Json& input) {
    if (c.arguments.empty()) {
        input = Json::object();
        return true;
    }
    if (!parse_embedded_json(c.arguments, input) || !input.is_object()) {
        r.fail_at(call_path(m.index, c.index) + ".function.arguments",
                  "tool call arguments must be a JSON object (at most 64 levels deep) to be sent to " +
                      std::string(target) + ".");
        return false;
    }
    return true;
}

bool split_data_url(std::string_view url, std::string_view& media_type, std::string_view& data) {
    if (url.rfind("data:", 0) != 0) {
        return false;
    }
    const auto semi = url.find(';');
    const auto comma = url.find(',');
    if (semi == std::string_view::npos || comma == std::string_view::npos || semi > comma ||
        url.compare(semi, 8, ";base64,") != 0) {
        return false;
    }
    media_type = url.substr(5, semi - 5);
    data = url.substr(comma + 1);
    return !media_type.empty();
}

bool reasoning_budget(std::string_view effort, std::int64_t low, std::int64_t medium, std::int64_t high,
                      std::int64_t& budget) {
    if (effort == "none" || effort == "minimal") {
        budget = 0;
    } else if (effort == "low") {
        budget = low;
    } else if (effort == "medium") {
        budget = medium;
    } else if (effort == "high") {
        budget = high;
    } else {
        return false;
    }
    return true;
}

bool chat_refused(const nlohmann::json& chat) {
    const nlohmann::json* choices = json::find(chat, "choices");
    if (choices == nullptr || !choices->is_array()) {
        return false;
    }
    return std::any_of(choices->begin(), choices->end(), [](const nlohmann::json& c) {
        return c.is_object() && json::string_or(c, "finish_reason") == "content_filter";
    });
}

}  // namespace sluice
