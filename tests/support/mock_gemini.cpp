#include "mock_gemini.hpp"

#include <nlohmann/json.hpp>

namespace sluice::test {

using Json = nlohmann::json;

namespace {

LocalResponse error(int status, const std::string& code, const std::string& message) {
    LocalResponse r;
    r.status = status;
    r.body = Json{{"error", {{"code", status}, {"message", message}, {"status", code}}}}.dump();
    return r;
}

std::int64_t words(const std::string& s) {
    std::int64_t n = 0;
    bool in = false;
    for (const char c : s) {
        const bool space = c == ' ' || c == '\n';
        n += (!space && !in) ? 1 : 0;
        in = !space;
    }
    return n;
}

constexpr const char* kSignature = "c2lnbmF0dXJlLW9mLXRoZS1tb2Nr";  // opaque, as Gemini's are

}  // namespace

LocalResponse gemini_generate(std::string_view path, std::string_view body) {
    if (path == "/models") {
        LocalResponse r;
        r.body =
            R"({"models":[{"name":"models/gemini-2.5-flash"},{"name":"models/gemini-2.5-pro"},{"name":"models/text-embedding-004"}]})";
        return r;
    }
    const auto colon = path.rfind(':');
    if (path.rfind("/models/", 0) != 0 || colon == std::string_view::npos) {
        return error(404, "NOT_FOUND", "unknown method");
    }
    const std::string model(path.substr(8, colon - 8));
    const std::string action(path.substr(colon + 1));
    const Json req = Json::parse(body, nullptr, false);
    if (req.is_discarded()) {
        return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.");
    }
    if (action == "batchEmbedContents") {
        Json embeddings = Json::array();
        for (const auto& r : req.value("requests", Json::array())) {
            const int dims = r.value("outputDimensionality", 4);
            Json values = Json::array();
            for (int i = 0; i < dims; ++i) {
                values.push_back(0.125 * (i + 1));
            }
            embeddings.push_back({{"values", values}});
        }
        LocalResponse r;
        r.body = Json{{"embeddings", embeddings}}.dump();
        return r;
    }
    if (action != "generateContent" && action != "streamGenerateContent") {
        return error(404, "NOT_FOUND", "unknown method " + action);
    }
    const Json contents = req.value("contents", Json::array());
    if (contents.empty()) {
        return error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified");
    }
    std::string last_text;
    std::string tool_answer;
    std::int64_t prompt = 0;
    for (const auto& c : contents) {
        tool_answer.clear();
        for (const auto& p : c.value("parts", Json::array())) {
            if (p.contains("functionCall") && !p.contains("thoughtSignature")) {
                return error(400, "INVALID_ARGUMENT",
                             "Function call is missing a thought_signature in functionCall parts.");
            }
            if (p.contains("text")) {
                last_text = p["text"].get<std::string>();
                prompt += words(last_text);
            }
            if (p.contains("functionResponse")) {
                tool_answer = p["functionResponse"].value("response", Json::object()).dump();
            }
        }
    }
    Json parts = Json::array();
    std::string text;
    const Json tools = req.value("tools", Json::array());
    const bool call_tool = tool_answer.empty() && !tools.empty() &&
                           req.value("toolConfig", Json::object())
                                   .value("functionCallingConfig", Json::object())
                                   .value("mode", "AUTO") != "NONE";
    if (call_tool) {
        const Json decl = tools[0]["functionDeclarations"][0];
        const std::string args = mock_tool_arguments(decl.value("parameters", Json::object()).dump());
        parts.push_back({{"functionCall", {{"name", decl.value("name", "")}, {"args", Json::parse(args)}}},
                         {"thoughtSignature", kSignature}});
    } else {
        text = tool_answer.empty() ? "This is a mock answer from sluice. You said: " + last_text
                                   : "The tool answered " + tool_answer;
    }
    const std::int64_t out_tokens = call_tool ? 5 : words(text);
    const Json usage = {{"promptTokenCount", prompt},
                        {"candidatesTokenCount", out_tokens},
                        {"thoughtsTokenCount", 2},
                        {"cachedContentTokenCount", 1},
                        {"totalTokenCount", prompt + out_tokens + 2}};
    LocalResponse r;
    if (action == "generateContent") {
        if (!call_tool) {
            parts.push_back({{"text", "thinking about it"}, {"thought", true}});
            parts.push_back({{"text", text}});
        }
        r.body = Json{{"candidates", Json::array({{{"content", {{"role", "model"}, {"parts", parts}}},
                                                   {"finishReason", "STOP"},
                                                   {"index", 0}}})},
                      {"usageMetadata", usage},
                      {"modelVersion", model},
                      {"responseId", "mock-resp-1"}}
                     .dump();
        return r;
    }
    r.content_type = "text/event-stream";
    auto chunk = [&](const Json& chunk_parts, bool last) {
        Json cand = {{"content", {{"role", "model"}, {"parts", chunk_parts}}}, {"index", 0}};
        if (last) {
            cand["finishReason"] = "STOP";
        }
        Json resp = {
            {"candidates", Json::array({cand})}, {"modelVersion", model}, {"responseId", "mock-resp-1"}};
        resp["usageMetadata"] = last ? usage : Json{{"promptTokenCount", prompt}};
        r.body += "data: " + resp.dump() + "\r\n\r\n";  // Gemini's SSE uses CRLF
    };
    if (call_tool) {
        chunk(parts, true);
        return r;
    }
    chunk(Json::array({{{"text", "thinking"}, {"thought", true}}}), false);
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto sp = text.find(' ', pos);
        sp = sp == std::string::npos ? text.size() : sp + 1;
        const bool last = sp >= text.size();
        chunk(Json::array({{{"text", text.substr(pos, sp - pos)}}}), last);
        pos = sp;
    }
    return r;
}

}  // namespace sluice::test
