#include "providers/translate_common.hpp"

namespace sluice {

using Json = nlohmann::json;

void append_turn(Json& turns, std::string_view role, Json items, const char* items_key) {
    if (items.empty()) {
        return;
    }
    if (!turns.empty() && turns.back()["role"] == role) {
        for (auto& item : items) {
            turns.back()[items_key].push_back(std::move(item));
        }
        return;
    }
    turns.push_back({{"role", role}, {items_key, std::move(items)}});
}

std::optional<GatewayError> tool_call_input(const Json& call, std::string_view provider_label, Json& input) {
    const std::string args = call.value("function", Json::object()).value("arguments", "");
    input = args.empty() ? Json::object() : Json::parse(args, nullptr, false);
    if (input.is_discarded() || !input.is_object()) {
        return GatewayError::bad_request("Tool call arguments must be a JSON object to be sent to " +
                                             std::string(provider_label) + ".",
                                         "invalid_parameter", "messages");
    }
    return std::nullopt;
}

std::string content_text(const Json& content) {
    if (content.is_string()) {
        return content.get<std::string>();
    }
    std::string text;
    if (content.is_array()) {
        for (const auto& p : content) {
            if (p.is_object() && p.value("type", "") == "text") {
                text += p.value("text", "");
            }
        }
    }
    return text;
}

}  // namespace sluice
