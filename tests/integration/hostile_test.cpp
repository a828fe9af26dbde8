// The hostile-request catalogue: every provider kind behind both front doors gets malformed and
// hostile requests. Each must get an HTTP answer, a 4xx with error JSON in the client's dialect,
// one access-log line, and leave the process serving everyone else.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_bedrock.hpp"
#include "mock_upstream.hpp"
#include "sluice_process.hpp"

#include <sluice/request_context.hpp>

#include "aws/eventstream.hpp"

namespace sluice::test {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kKey = "sk-catalogue-client";
const std::vector<std::pair<std::string, std::string>> kAuth = {
    {"Authorization", std::string("Bearer ") + kKey}};

/// Route prefixes, one per provider kind.
const std::vector<std::string> kKinds = {"oai", "az", "claude", "gemini", "br", "mock"};

std::string catalogue_config(const MockUpstream& up) {
    const std::string base = "\"" + up.base_url() + "\"";
    const std::string plain = "\"http://127.0.0.1:" + std::to_string(up.port()) + "\"";
    std::string y = "log:\n  level: info\n  access_log: true\n";
    y += "providers:\n";
    y += "  oai:\n    kind: openai\n    base_url: " + base + "\n    api_key: \"sk-oai-canary\"\n";
    y += "  az:\n    kind: azure\n    base_url: " + plain + "\n    api_key: \"azure-canary\"\n";
    y += "  claude:\n    kind: anthropic\n    base_url: " + plain +
         "\n    api_key: \"sk-ant-canary\"\n    default_max_tokens: 256\n";
    y += "  gem:\n    kind: gemini\n    base_url: " + plain + "\n    api_key: \"AIza-canary\"\n";
    y += "  br:\n    kind: bedrock\n    region: us-east-1\n    base_url: " + plain + "\n";
    y += "  mk:\n    kind: mock\n";
    y += "routes:\n";
    const std::vector<std::pair<std::string, std::string>> routes = {
        {"oai", "oai"}, {"az", "az"}, {"claude", "claude"}, {"gemini", "gem"}, {"br", "br"}, {"mock", "mk"}};
    for (const auto& [prefix, provider] : routes) {
        y += "  - model: \"" + prefix + "-*\"\n    targets: [{provider: " + provider +
             "}]\n    retries: {attempts: 1}\n    breaker: {enabled: false}\n";
    }
    y += std::string("keys:\n  - name: catalogue\n    key: \"") + kKey + "\"\n";
    return y;
}

/// `{"model":"<model>","messages":[{"role":"user","content":"hi"}]<extra>}` with `$M` in
/// `body` replaced by the model.
std::string with_model(std::string body, const std::string& model) {
    const auto at = body.find("$M");
    if (at != std::string::npos) {
        body.replace(at, 2, model);
    }
    return body;
}

const std::string kUser = R"([{"role":"user","content":"hi"}])";

/// Chat Completions requests no provider can serve: wrong types at every level, hostile model
/// names, nesting past the depth cap.
std::vector<std::string> chat_catalogue() {
    const std::string m = R"({"model":"$M",)";
    const std::string u = R"("messages":)" + kUser;
    std::string deep;  // 100 levels in the body itself (the cap is 64)
    for (int i = 0; i < 100; ++i) {
        deep += R"({"a":)";
    }
    deep += "1" + std::string(100, '}');
    return {
        m + R"("messages":5})",
        m + R"("messages":[5]})",
        m + R"("messages":[{"role":5,"content":"x"}]})",
        m + R"("messages":[{"role":"user","content":{"x":1}}]})",
        m + R"("messages":[{"role":"user","content":[5]}]})",
        m + R"("messages":[{"role":"user","content":[{"type":5,"text":"x"}]}]})",
        m + R"("messages":[{"role":"user","content":[{"type":"text","text":5}]}]})",
        m + R"("messages":[{"role":"user","content":[{"type":"image_url","image_url":5}]}]})",
        m + R"("messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":7}}]}]})",
        m + R"("messages":[{"role":"user","content":"x","name":5}]})",
        m + R"("messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":5}]})",
        m + R"("messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[5]}]})",
        m + R"("messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":5,"arguments":"{}"}}]}]})",
        m + R"("messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":5}}]}]})",
        m + R"("messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":5,"content":"r"}]})",
        m + R"("messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"c","content":{"a":1}}]})",
        m + u + R"(,"tools":5})",
        m + u + R"(,"tools":[5]})",
        m + u + R"(,"tools":[{"type":"function","function":{"name":5}}]})",
        m + u + R"(,"tools":[{"type":"function","function":{"name":"f","parameters":5}}]})",
        m + u + R"(,"tool_choice":5})",
        m + u + R"(,"tool_choice":{"type":"function","function":{"name":5}}})",
        m + u + R"(,"max_tokens":"x"})",
        m + u + R"(,"temperature":"hot"})",
        m + u + R"(,"top_p":[]})",
        m + u + R"(,"stop":5})",
        m + u + R"(,"stream":"yes"})",
        m + u + R"(,"stream":true,"stream_options":{"include_usage":"y"}})",
        m + u + R"(,"response_format":{"type":5}})",
        m + u + R"(,"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":5}}})",
        m + u + R"(,"tools":[{"type":"function","function":{"name":"f","parameters":)" + deep + "}}]}",
        R"({"model":5,)" + u + "}",
        R"({"model":"$M\r\nX-Injected: 1\r\n\r\nGET /other HTTP/1.1",)" + u + "}",
        R"({"model":"$M\u0000nul",)" + u + "}",
        R"({"model":"$M\ttab",)" + u + "}",
        R"({"model":"$M)" + std::string(300, 'x') + "\"," + u + "}",
    };
}

/// Messages API requests that are malformed for every provider.
std::vector<std::string> messages_catalogue() {
    const std::string m = R"({"model":"$M","max_tokens":64,)";
    const std::string u = R"("messages":)" + kUser;
    return {
        R"({"model":"$M",)" + u + "}",  // max_tokens is required
        R"({"model":"$M","max_tokens":"x",)" + u + "}",
        m + R"("messages":5})",
        m + R"("messages":[5]})",
        m + R"("messages":[{"role":5,"content":"x"}]})",
        m + R"("messages":[{"role":"user","content":{"x":1}}]})",
        m + R"("messages":[{"role":"user","content":[5]}]})",
        m + R"("messages":[{"role":"user","content":[{"type":"text","text":5}]}]})",
        m + R"("messages":[{"role":"user","content":[{"type":"image","source":5}]}]})",
        m + R"("messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":5}]}]})",
        m + R"("messages":[{"role":"user","content":"x"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":5,"input":{}}]}]})",
        m + R"("messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":5,"content":"x"}]}]})",
        m + R"("messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":5}]}]})",
        m + u + R"(,"system":5})",
        m + u + R"(,"system":[{"type":"text","text":5}]})",
        m + u + R"(,"tools":5})",
        m + u + R"(,"tools":[{"name":5,"input_schema":{"type":"object"}}]})",
        m + u + R"(,"tools":[{"name":"f","input_schema":5}]})",
        m + u + R"(,"tool_choice":5})",
        m + u + R"(,"tool_choice":{"type":"tool","name":5}})",
        m + u + R"(,"temperature":"x"})",
        m + u + R"(,"top_k":"x"})",
        m + u + R"(,"stop_sequences":"END"})",
        m + u + R"(,"stream":"yes"})",
        m + u + R"(,"thinking":{"type":"enabled","budget_tokens":"x"}})",
        m + u + R"(,"metadata":5})",
        R"({"model":5,"max_tokens":64,)" + u + "}",
        R"({"model":"$M\r\nX-Injected: 1","max_tokens":64,)" + u + "}",
        R"({"model":"$M)" + std::string(300, 'x') + R"(","max_tokens":64,)" + u + "}",
    };
}

/// Tool-call arguments that are one JSON document nested `depth` objects deep, as a string.
std::string deep_arguments_request(const std::string& model, int depth) {
    std::string args;
    args.reserve(static_cast<std::size_t>(depth) * 8 + 8);
    for (int i = 0; i < depth; ++i) {
        args += R"({\"a\":)";
    }
    args += "1";
    args.append(static_cast<std::size_t>(depth), '}');
    return R"({"model":")" + model +
           R"(","messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":")" +
           args + R"("}}]},{"role":"tool","tool_call_id":"c1","content":"ok"}]})";
}

std::size_t access_lines(const SluiceProcess& p) {
    const std::string out = p.output();
    std::size_t n = 0;
    for (std::size_t at = out.find(" access request_id="); at != std::string::npos;
         at = out.find(" access request_id=", at + 1)) {
        ++n;
    }
    return n;
}

/// Error JSON in OpenAI's shape, or (for `/v1/messages`) in Anthropic's.
bool in_dialect(const std::string& body, bool anthropic, std::string& why) {
    const json j = json::parse(body, nullptr, false);
    if (!j.is_object()) {
        why = "not JSON";
        return false;
    }
    if (anthropic) {
        const bool ok = j.value("type", "") == "error" && j.contains("error") && j["error"].is_object() &&
                        j["error"].contains("type") && j["error"]["type"].is_string() &&
                        j["error"].contains("message") && j["error"]["message"].is_string();
        why = ok ? "" : "not Anthropic's error shape";
        return ok;
    }
    const bool ok = j.contains("error") && j["error"].is_object() && j["error"].contains("message") &&
                    j["error"]["message"].is_string() && j["error"].contains("type") &&
                    j["error"].contains("param") && j["error"].contains("code");
    why = ok ? "" : "not OpenAI's error shape";
    return ok;
}

class Catalogue : public ::testing::Test {
protected:
    void SetUp() override {
        up_ = std::make_unique<MockUpstream>();
        proc_ = std::make_unique<SluiceProcess>(
            "  threads: 2\n", catalogue_config(*up_),
            std::vector<std::pair<std::string, std::string>>{{"AWS_ACCESS_KEY_ID", kMockAwsAccessKey},
                                                             {"AWS_SECRET_ACCESS_KEY", kMockAwsSecret}});
        ASSERT_TRUE(proc_->ready()) << proc_->output();
    }
    /// A valid request per kind is answered 200: the process still serves.
    void expect_serving(const std::string& kind) {
        Client c(proc_->port());
        const auto r = c.post_json(
            "/v1/chat/completions",
            R"({"model":")" + kind + R"(-ok","messages":[{"role":"user","content":"hi"}]})", kAuth);
        EXPECT_EQ(r.status, 200) << kind << ": " << r.body;
        ++sent_;
    }
    void expect_access_lines() {
        // Access lines are written off the event loop: give the writer a moment.
        for (int i = 0; i < 100 && access_lines(*proc_) < sent_; ++i) {
            std::this_thread::sleep_for(20ms);
        }
        EXPECT_EQ(access_lines(*proc_), sent_);
    }
    std::unique_ptr<MockUpstream> up_;
    std::unique_ptr<SluiceProcess> proc_;
    std::size_t sent_ = 0;
};

TEST_F(Catalogue, EveryProviderKindAnswersHostileChatRequestsWith4xxAndKeepsServing) {
    const auto catalogue = chat_catalogue();
    ASSERT_GE(catalogue.size(), 25u);
    for (const auto& kind : kKinds) {
        Client c(proc_->port());
        for (std::size_t i = 0; i < catalogue.size(); ++i) {
            const auto r = c.post_json("/v1/chat/completions", with_model(catalogue[i], kind + "-m"), kAuth);
            ++sent_;
            std::string why;
            EXPECT_TRUE(r.status >= 400 && r.status < 500)
                << kind << " #" << i << ": " << r.status << " " << r.body << "\n"
                << catalogue[i].substr(0, 300);
            EXPECT_TRUE(in_dialect(r.body, false, why)) << kind << " #" << i << ": " << why << ": " << r.body;
            EXPECT_TRUE(r.header("x-injected").empty());
        }
        expect_serving(kind);
    }
    expect_access_lines();
    // Nothing a client sent split an upstream request: every request the mock saw is whole.
    for (const auto& req : up_->requests()) {
        EXPECT_EQ(req.target.find('\r'), std::string::npos) << req.target;
        EXPECT_EQ(req.target.find("/other"), std::string::npos) << req.target;
    }
    EXPECT_EQ(proc_->output().find("unexpected"), std::string::npos) << proc_->output();
}

TEST_F(Catalogue, EveryProviderKindAnswersHostileMessagesRequestsWith4xxInAnthropicShape) {
    const auto catalogue = messages_catalogue();
    ASSERT_GE(catalogue.size(), 25u);
    for (const auto& kind : kKinds) {
        Client c(proc_->port());
        for (std::size_t i = 0; i < catalogue.size(); ++i) {
            const auto r = c.post_json("/v1/messages", with_model(catalogue[i], kind + "-m"), kAuth);
            ++sent_;
            std::string why;
            EXPECT_TRUE(r.status >= 400 && r.status < 500)
                << kind << " #" << i << ": " << r.status << " " << r.body << "\n"
                << catalogue[i];
            EXPECT_TRUE(in_dialect(r.body, true, why)) << kind << " #" << i << ": " << why << ": " << r.body;
        }
        expect_serving(kind);
    }
    expect_access_lines();
}

TEST_F(Catalogue, ArgumentsNested150000DeepAreRefusedWithoutCrashing) {
    // The translating kinds parse tool-call arguments: past the depth cap that is a 400 naming
    // the field. The passthrough kinds send the string on as it is (it is valid JSON text).
    for (const auto& kind : kKinds) {
        Client c(proc_->port(), 30s);
        const auto r =
            c.post_json("/v1/chat/completions", deep_arguments_request(kind + "-m", 150000), kAuth);
        ++sent_;
        if (kind == "claude" || kind == "gemini" || kind == "br") {
            EXPECT_EQ(r.status, 400) << kind << ": " << r.body.substr(0, 300);
            const json j = json::parse(r.body, nullptr, false);
            EXPECT_EQ(j["error"]["param"], "messages[1].tool_calls[0].function.arguments") << kind;
        } else {
            EXPECT_GT(r.status, 0) << kind;
        }
        expect_serving(kind);
    }
    expect_access_lines();
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

/// A filter with a bug: it throws for requests whose model is "boom".
class ThrowingFilter final : public Filter {
public:
    std::string_view name() const noexcept override { return "throwing"; }
    unsigned hooks() const noexcept override { return request; }
    boost::asio::awaitable<RequestVerdict> on_request(RequestContext& ctx) const override {
        if (ctx.api.model == "boom") {
            throw std::runtime_error("a bug in a filter");
        }
        co_return RequestVerdict::proceed();
    }
};

TEST(LastResort, AnExceptionBecomesA500JsonAnswerAndTheServerKeepsServing) {
    std::vector<std::shared_ptr<const Filter>> extra;
    extra.push_back(std::make_shared<ThrowingFilter>());
    Gateway gw(
        "providers:\n  mk:\n    kind: mock\nroutes:\n  - model: \"*\"\n    targets: [{provider: mk}]\n",
        std::move(extra));
    Client c(gw.port());
    const auto r = c.post_json("/v1/chat/completions",
                               R"({"model":"boom","messages":[{"role":"user","content":"hi"}]})");
    EXPECT_EQ(r.status, 500);
    const json j = json::parse(r.body, nullptr, false);
    EXPECT_EQ(j["error"]["code"], "internal_error") << r.body;
    EXPECT_EQ(gw.server().unexpected_errors.load(), 1u);
    Client again(gw.port());
    EXPECT_EQ(again
                  .post_json("/v1/chat/completions",
                             R"({"model":"fine","messages":[{"role":"user","content":"hi"}]})")
                  .status,
              200);
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

TEST(HostileModel, AGlobRoutedNameReachesTheUpstreamAsOneRequestWithItsNameInOneSegment) {
    MockUpstream up;
    Gateway gw(
        "providers:\n  gem:\n    kind: gemini\n    base_url: \"http://127.0.0.1:" +
        std::to_string(up.port()) +
        "\"\n    api_key: \"AIza-hostile\"\n"
        "routes:\n  - model: \"gemini-*\"\n    targets: [{provider: gem}]\n    retries: {attempts: 1}\n");
    for (const std::string name : {"gemini-../../x", "gemini-x?key=stolen", "gemini-x#f", "gemini-a/b c"}) {
        up.clear();
        Client c(gw.port());
        const auto r =
            c.post_json("/v1/chat/completions",
                        R"({"model":")" + name + R"(","messages":[{"role":"user","content":"hi"}]})");
        EXPECT_GT(r.status, 0);
        const auto reqs = up.requests();
        ASSERT_EQ(reqs.size(), 1u) << name;
        const auto& t = reqs[0].target;
        EXPECT_EQ(t.rfind("/v1beta/models/gemini-", 0), 0u) << t;
        EXPECT_EQ(t.find("/x"), std::string::npos) << t;
        EXPECT_EQ(t.find('?'), std::string::npos) << t;  // the key goes in a header, nothing in a query
        EXPECT_EQ(t.find('#'), std::string::npos) << t;
        EXPECT_EQ(t.find(' '), std::string::npos) << t;
        for (const auto& [k, v] : reqs[0].headers) {
            EXPECT_NE(k, "X-Injected");
        }
    }
    // Names with control bytes never leave sluice.
    up.clear();
    Client c(gw.port());
    const auto r = c.post_json(
        "/v1/chat/completions",
        R"({"model":"gemini-x\r\nX-Injected: 1\r\n\r\nGET /other HTTP/1.1","messages":[{"role":"user","content":"hi"}]})");
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(up.requests().empty());
}

}  // namespace
}  // namespace sluice::test

namespace sluice::test {
namespace {

std::string sse_answer(const std::string& body) {
    return "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

TEST(StreamScrub, ProviderKeysInStreamedErrorsNeverReachTheClient) {
    MockUpstream up;
    const std::string oai_key = "sk-canary-oai-5d1f9e";
    const std::string ant_key = "sk-ant-canary-77aa21";
    const std::string gem_key = "AIzaCanaryGemini9911";
    const std::string plain = "\"http://127.0.0.1:" + std::to_string(up.port()) + "\"";
    Gateway gw("providers:\n  oai:\n    kind: openai\n    base_url: \"" + up.base_url() +
               "\"\n    api_key: \"" + oai_key +
               "\"\n  claude:\n    kind: anthropic\n    base_url: " + plain + "\n    api_key: \"" + ant_key +
               "\"\n  gem:\n    kind: gemini\n    base_url: " + plain + "\n    api_key: \"" + gem_key +
               "\"\nroutes:\n"
               "  - model: \"oai-*\"\n    targets: [{provider: oai}]\n    retries: {attempts: 1}\n"
               "  - model: \"claude-*\"\n    targets: [{provider: claude}]\n    retries: {attempts: 1}\n"
               "  - model: \"gemini-*\"\n    targets: [{provider: gem}]\n    retries: {attempts: 1}\n");
    const std::string first_chunk =
        R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]})"
        "\n\n";
    struct Case {
        std::string model;
        std::string body;
        std::string key;
    };
    const std::vector<Case> cases = {
        // Committed (a chunk went out first), then uncommitted (the error comes first).
        {"oai-m",
         first_chunk + R"(data: {"error":{"message":"invalid key )" + oai_key +
             R"(","type":"server_error"}})"
             "\n\n",
         oai_key},
        {"oai-m",
         R"(data: {"error":{"message":"invalid key )" + oai_key +
             R"(","type":"server_error"}})"
             "\n\n",
         oai_key},
        {"claude-m",
         "event: error\ndata: "
         "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"key " +
             ant_key + "\"}}\n\n",
         ant_key},
        {"gemini-m",
         R"(data: {"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]})"
         "\n\n"
         R"(data: {"error":{"code":503,"message":"key )" +
             gem_key +
             R"( rejected","status":"UNAVAILABLE"}})"
             "\n\n",
         gem_key},
    };
    for (const auto& c : cases) {
        up.enqueue_raw(sse_answer(c.body));
        Client client(gw.port());
        const auto r = client.post_json(
            "/v1/chat/completions",
            R"({"model":")" + c.model + R"(","stream":true,"messages":[{"role":"user","content":"hi"}]})");
        EXPECT_GT(r.status, 0) << c.model;
        EXPECT_EQ(r.body.find(c.key), std::string::npos) << c.model << ": " << r.body;
        for (const auto& [k, v] : r.headers) {
            EXPECT_EQ(v.find(c.key), std::string::npos) << k;
        }
        EXPECT_NE(r.body.find("error"), std::string::npos) << c.model << ": " << r.body;
    }
}

/// Bedrock's binary event stream: the given messages as one HTTP answer.
std::string bedrock_stream_answer(const std::vector<std::string>& frames) {
    std::string body;
    for (const auto& f : frames) {
        body += f;
    }
    return "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.amazon.eventstream\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string bedrock_event(const std::string& type, const std::string& payload) {
    return aws::encode_message(
        {{":event-type", type}, {":content-type", "application/json"}, {":message-type", "event"}}, payload);
}

std::string bedrock_exception(const std::string& type, const std::string& message) {
    return aws::encode_message(
        {{":message-type", "exception"}, {":exception-type", type}, {":content-type", "application/json"}},
        json{{"message", message}}.dump());
}

TEST(StreamScrub, I5_CanaryCredentialsOfEveryProviderKindInItsErrorsReachNoClientByteAndNoLogLine) {
    MockUpstream up;
    const std::string oai_key = "sk-canary-oai-31c7a0";
    const std::string ant_key = "sk-ant-canary-c0ffee";
    const std::string gem_key = "AIzaCanaryGem4242";
    const std::string az_key = "0f9e8d7c6b5a4canaryazure";
    const std::string aws_id = "AKIACANARY7Q2WX5Z9";
    const std::string aws_secret = "canary/aws+secret9e8d7c";
    const std::string aws_token = "IQoJcanarySessionToken5a5a";
    const std::string plain = "\"http://127.0.0.1:" + std::to_string(up.port()) + "\"";
    SluiceProcess gw(
        "  threads: 1\n",
        "log:\n  level: trace\n  format: json\nproviders:\n"
        "  oai:\n    kind: openai\n    base_url: \"" +
            up.base_url() + "\"\n    api_key: \"" + oai_key +
            "\"\n  claude:\n    kind: anthropic\n    base_url: " + plain + "\n    api_key: \"" + ant_key +
            "\"\n  az:\n    kind: azure\n    base_url: " + plain + "\n    api_key: \"" + az_key +
            "\"\n  gem:\n    kind: gemini\n    base_url: " + plain + "\n    api_key: \"" + gem_key +
            "\"\n  br:\n    kind: bedrock\n    region: us-east-1\n    base_url: " + plain +
            "\nroutes:\n"
            "  - model: \"oai-*\"\n    targets: [{provider: oai}]\n    retries: {attempts: 1}\n"
            "  - model: \"az-*\"\n    targets: [{provider: az}]\n    retries: {attempts: 1}\n"
            "  - model: \"claude-*\"\n    targets: [{provider: claude}]\n    retries: {attempts: 1}\n"
            "  - model: \"gemini-*\"\n    targets: [{provider: gem}]\n    retries: {attempts: 1}\n"
            "  - model: \"br-*\"\n    targets: [{provider: br, model: "
            "\"anthropic.claude-3-5-haiku-20241022-v1:0\"}]\n"
            "    retries: {attempts: 1}\n",
        {{"AWS_ACCESS_KEY_ID", aws_id},
         {"AWS_SECRET_ACCESS_KEY", aws_secret},
         {"AWS_SESSION_TOKEN", aws_token}});
    ASSERT_TRUE(gw.ready()) << gw.output();
    const std::vector<std::string> canaries = {oai_key, az_key,     ant_key,  gem_key,
                                               aws_id,  aws_secret, aws_token};
    // Each provider echoes its own credentials (the only ones it ever received).
    const std::string aws_all = aws_id + " " + aws_secret + " " + aws_token;
    const std::string oai_chunk =
        R"(data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]})"
        "\n\n";
    const std::string oai_error =
        "data: " + json{{"error", {{"message", "bad key " + oai_key}, {"type", "server_error"}}}}.dump() +
        "\n\n";
    const std::string az_error =
        "data: " +
        json{{"error",
              {{"message", "Access denied due to invalid subscription key " + az_key}, {"code", "401"}}}}
            .dump() +
        "\n\n";
    const std::string ant_error =
        "event: error\ndata: " +
        json{{"type", "error"}, {"error", {{"type", "overloaded_error"}, {"message", "key " + ant_key}}}}
            .dump() +
        "\n\n";
    const std::string gem_chunk = R"(data: {"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]})"
                                  "\n\n";
    const std::string gem_error =
        "data: " +
        json{{"error", {{"code", 503}, {"message", "key " + gem_key}, {"status", "UNAVAILABLE"}}}}.dump() +
        "\n\n";
    const std::string br_start = bedrock_event("messageStart", R"({"role":"assistant"})");
    const std::string br_delta =
        bedrock_event("contentBlockDelta", R"({"contentBlockIndex":0,"delta":{"text":"Hi"}})");
    const std::string br_error =
        bedrock_exception("validationException", "The security token " + aws_all + " is invalid");
    const auto error_json = [](const std::string& key) {
        return json{{"error", {{"message", "invalid key " + key}, {"type", "invalid_request_error"}}}}.dump();
    };
    const std::string ant_error_json =
        json{{"type", "error"},
             {"error", {{"type", "authentication_error"}, {"message", "invalid key " + ant_key}}}}
            .dump();
    const auto http_error = [](int status, const std::string& body) {
        return "HTTP/1.1 " + std::to_string(status) +
               " Error\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\n\r\n" + body;
    };
    struct Case {
        std::string path;
        std::string model;
        bool stream;
        std::string answer;
    };
    const std::vector<Case> cases = {
        // Streamed errors: after the first event went out (committed) and before it (uncommitted).
        {"/v1/chat/completions", "oai-m", true, sse_answer(oai_chunk + oai_error)},
        {"/v1/chat/completions", "oai-m", true, sse_answer(oai_error)},
        {"/v1/messages", "oai-m", true, sse_answer(oai_chunk + oai_error)},
        {"/v1/chat/completions", "az-m", true, sse_answer(oai_chunk + az_error)},
        {"/v1/messages", "az-m", true, sse_answer(az_error)},
        {"/v1/chat/completions", "claude-m", true, sse_answer(ant_error)},
        {"/v1/messages", "claude-m", true, sse_answer(ant_error)},
        {"/v1/chat/completions", "gemini-m", true, sse_answer(gem_chunk + gem_error)},
        {"/v1/messages", "gemini-m", true, sse_answer(gem_chunk + gem_error)},
        {"/v1/chat/completions", "br-m", true, bedrock_stream_answer({br_start, br_delta, br_error})},
        {"/v1/chat/completions", "br-m", true, bedrock_stream_answer({br_error})},
        {"/v1/messages", "br-m", true, bedrock_stream_answer({br_start, br_delta, br_error})},
        // Error answers to non-stream requests.
        {"/v1/chat/completions", "oai-m", false, http_error(401, error_json(oai_key))},
        {"/v1/messages", "oai-m", false, http_error(429, error_json(oai_key))},
        {"/v1/chat/completions", "az-m", false, http_error(401, error_json(az_key))},
        {"/v1/chat/completions", "claude-m", false, http_error(401, ant_error_json)},
        {"/v1/chat/completions", "gemini-m", false, http_error(400, error_json(gem_key))},
        {"/v1/chat/completions", "br-m", false,
         http_error(403, json{{"message", "token " + aws_all}}.dump())},
        {"/v1/messages", "br-m", false, http_error(400, json{{"message", "token " + aws_all}}.dump())},
    };
    for (const auto& c : cases) {
        up.enqueue_raw(c.answer);
        Client client(gw.port());
        const std::string body =
            c.path == "/v1/messages"
                ? R"({"model":")" + c.model + R"(","max_tokens":64,"stream":)" +
                      (c.stream ? "true" : "false") + R"(,"messages":[{"role":"user","content":"hi"}]})"
                : R"({"model":")" + c.model + R"(","stream":)" + (c.stream ? "true" : "false") +
                      R"(,"messages":[{"role":"user","content":"hi"}]})";
        const auto r = client.post_json(c.path, body);
        const std::string where = c.path + " " + c.model + (c.stream ? " stream" : "");
        EXPECT_GT(r.status, 0) << where;
        EXPECT_NE(r.body.find("rror"), std::string::npos) << where << ": " << r.body;
        for (const auto& canary : canaries) {
            EXPECT_EQ(r.body.find(canary), std::string::npos)
                << where << " leaked " << canary << ": " << r.body;
            for (const auto& [k, v] : r.headers) {
                EXPECT_EQ(v.find(canary), std::string::npos) << where << ": header " << k;
            }
        }
    }
    EXPECT_EQ(up.request_count(), cases.size());
    gw.signal(SIGTERM);
    EXPECT_EQ(gw.wait_exit(), 0);
    const std::string log = gw.output();
    EXPECT_NE(log.find("\"msg\":\"access\""), std::string::npos) << log.substr(0, 2000);
    for (const auto& canary : canaries) {
        const auto at = log.find(canary);
        EXPECT_EQ(at, std::string::npos)
            << "log leaked " << canary << ": "
            << (at == std::string::npos ? "" : log.substr(at > 300 ? at - 300 : 0, 600));
    }
}

}  // namespace
}  // namespace sluice::test
