#include "mock_bedrock.hpp"

#include <nlohmann/json.hpp>

#include "aws/eventstream.hpp"
#include "aws/sigv4.hpp"

namespace sluice::test {

using Json = nlohmann::json;

namespace {

std::string header(const std::vector<std::pair<std::string, std::string>>& headers, const std::string& name) {
    for (const auto& [k, v] : headers) {
        std::string lower = k;
        for (auto& c : lower) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        if (lower == name) {
            return v;
        }
    }
    return {};
}

LocalResponse error(int status, const std::string& message) {
    LocalResponse r;
    r.status = status;
    r.body = Json{{"message", message}}.dump();
    return r;
}

std::string event(const std::string& type, const Json& payload) {
    return aws::encode_message(
        {{":event-type", type}, {":content-type", "application/json"}, {":message-type", "event"}},
        payload.dump());
}

}  // namespace

LocalResponse bedrock_generate(std::string_view method, std::string_view path,
                               const std::vector<std::pair<std::string, std::string>>& headers,
                               std::string_view body) {
    // Check the signature over what actually arrived.
    const std::string auth = header(headers, "authorization");
    const std::string date = header(headers, "x-amz-date");
    const auto signed_pos = auth.find("SignedHeaders=");
    const auto sig_pos = auth.find("Signature=");
    if (auth.rfind("AWS4-HMAC-SHA256 Credential=" + std::string(kMockAwsAccessKey) + "/", 0) != 0 ||
        signed_pos == std::string::npos || sig_pos == std::string::npos || date.size() != 16) {
        return error(403, "Missing or malformed Authorization");
    }
    const auto scope_start = auth.find('/') + 1;
    const auto scope = auth.substr(scope_start, auth.find(',', scope_start) - scope_start);
    const std::string region = scope.substr(9, scope.find('/', 9) - 9);
    const std::string signed_names =
        auth.substr(signed_pos + 14, auth.find(',', signed_pos) - signed_pos - 14);
    aws::SignRequest sr;
    sr.method = std::string(method);
    sr.path = std::string(path);
    sr.payload = std::string(body);
    std::size_t pos = 0;
    while (pos <= signed_names.size()) {
        const auto semi = signed_names.find(';', pos);
        const std::string name =
            signed_names.substr(pos, semi == std::string::npos ? std::string::npos : semi - pos);
        sr.headers.emplace_back(name, header(headers, name));
        if (semi == std::string::npos) {
            break;
        }
        pos = semi + 1;
    }
    const auto expected = aws::sign(sr, {kMockAwsAccessKey, kMockAwsSecret, ""}, region, "bedrock", date);
    if (auth.substr(sig_pos + 10) != expected.signature) {
        return error(403, "The request signature we calculated does not match the signature you provided.");
    }

    const Json req = Json::parse(body, nullptr, false);
    if (req.is_discarded() || !req.contains("messages") || req["messages"].empty()) {
        return error(400, "messages: required");
    }
    std::string last_text;
    bool tool_result = false;
    for (const auto& m : req["messages"]) {
        tool_result = false;
        for (const auto& b : m.value("content", Json::array())) {
            if (b.contains("text")) {
                last_text = b["text"];
            }
            tool_result = tool_result || b.contains("toolResult");
        }
    }
    const bool call_tool = !tool_result && req.contains("toolConfig");
    const std::string text =
        tool_result ? "The tool answered." : "This is a mock answer from sluice. You said: " + last_text;
    std::string args;
    Json tool;
    if (call_tool) {
        tool = req["toolConfig"]["tools"][0]["toolSpec"];
        args = mock_tool_arguments(tool["inputSchema"].value("json", Json::object()).dump());
    }
    const Json usage = {
        {"inputTokens", 7}, {"outputTokens", 9}, {"totalTokens", 16}, {"cacheReadInputTokens", 2}};
    const std::string_view p = path;
    LocalResponse r;
    if (p.size() >= 9 && p.substr(p.size() - 9) == "/converse") {
        Json content = Json::array();
        if (call_tool) {
            content.push_back(
                {{"toolUse",
                  {{"toolUseId", "tooluse_mock"}, {"name", tool["name"]}, {"input", Json::parse(args)}}}});
        } else {
            content.push_back({{"text", text}});
        }
        r.body = Json{{"output", {{"message", {{"role", "assistant"}, {"content", content}}}}},
                      {"stopReason", call_tool ? "tool_use" : "end_turn"},
                      {"usage", usage},
                      {"metrics", {{"latencyMs", 12}}}}
                     .dump();
        return r;
    }
    if (p.size() < 16 || p.substr(p.size() - 16) != "/converse-stream") {
        return error(404, "unknown operation");
    }
    r.content_type = "application/vnd.amazon.eventstream";
    std::vector<std::string> frames;
    frames.push_back(event("messageStart", {{"role", "assistant"}}));
    if (call_tool) {
        frames.push_back(
            event("contentBlockStart",
                  {{"contentBlockIndex", 0},
                   {"start", {{"toolUse", {{"toolUseId", "tooluse_mock"}, {"name", tool["name"]}}}}}}));
        for (std::size_t i = 0; i < args.size(); i += 4) {
            frames.push_back(
                event("contentBlockDelta",
                      {{"contentBlockIndex", 0}, {"delta", {{"toolUse", {{"input", args.substr(i, 4)}}}}}}));
        }
    } else {
        std::size_t pos2 = 0;
        while (pos2 < text.size()) {
            auto sp = text.find(' ', pos2);
            sp = sp == std::string::npos ? text.size() : sp + 1;
            frames.push_back(
                event("contentBlockDelta",
                      {{"contentBlockIndex", 0}, {"delta", {{"text", text.substr(pos2, sp - pos2)}}}}));
            pos2 = sp;
        }
    }
    frames.push_back(event("contentBlockStop", {{"contentBlockIndex", 0}}));
    frames.push_back(event("messageStop", {{"stopReason", call_tool ? "tool_use" : "end_turn"}}));
    frames.push_back(event("metadata", {{"usage", usage}, {"metrics", {{"latencyMs", 12}}}}));
    const std::string fault = last_text.rfind("fault:", 0) == 0 ? last_text.substr(6) : "";
    if (fault == "bad_crc") {
        frames[1][frames[1].size() - 1] ^= 0x5A;  // corrupt the second frame's message CRC
    } else if (fault == "throttle") {
        frames.insert(
            frames.begin() + 2,
            aws::encode_message({{":message-type", "exception"},
                                 {":exception-type", "throttlingException"},
                                 {":content-type", "application/json"}},
                                R"({"message":"Too many requests, please wait before trying again."})"));
        frames.resize(3);
    }
    for (const auto& f : frames) {
        r.body += f;
    }
    return r;
}

}  // namespace sluice::test
