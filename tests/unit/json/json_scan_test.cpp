#include <gtest/gtest.h>

#include "api/api_request.hpp"
#include "json/json_scan.hpp"

namespace sluice {
namespace {

bool valid(std::string_view text) {
    json::ScanError err;
    return json::scan(text, nullptr, err);
}

TEST(JsonScan, AcceptsValidJson) {
    for (const char* t : {"{}", "[]", "0", "-1.5e+10", "\"x\"", "true", "null",
                          R"({"a":[1,2,{"b":"c\u00e9\ud83d\ude00"}],"d":null})", " {\"a\" : 1 } "}) {
        EXPECT_TRUE(valid(t)) << t;
    }
}

TEST(JsonScan, C1_RejectsInvalidJson) {
    for (const char* t : {"", "{", "{\"a\":}", "{'a':1}", "[1,]", "01", "1.", "\"\\x\"", "tru", "{\"a\":1}x",
                          "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "\"a\tb\""}) {
        EXPECT_FALSE(valid(t)) << t;
    }
    EXPECT_FALSE(valid("\"\xff\""));          // invalid UTF-8
    EXPECT_FALSE(valid("\"\xc0\xaf\""));      // overlong
    EXPECT_FALSE(valid("\"\xed\xa0\x80\""));  // encoded surrogate
}

TEST(JsonScan, C1_DepthIsCapped) {
    const std::string deep = std::string(100000, '[') + std::string(100000, ']');
    EXPECT_FALSE(valid(deep));
    EXPECT_TRUE(valid(std::string(60, '[') + std::string(60, ']')));
}

TEST(JsonScan, ListsTopLevelMembersWithSpans) {
    const std::string text = R"({"model":"gpt-4o","messages":[{"role":"user"}],"mod\u0065l2":1})";
    std::vector<json::Member> members;
    json::ScanError err;
    ASSERT_TRUE(json::scan(text, &members, err));
    ASSERT_EQ(members.size(), 3u);
    EXPECT_TRUE(members[0].key_is("model"));
    EXPECT_EQ(members[0].value, "\"gpt-4o\"");
    EXPECT_EQ(members[1].kind, json::Kind::array);
    EXPECT_TRUE(members[2].key_is("model2"));
    EXPECT_EQ(text.substr(members[0].begin, members[0].end - members[0].begin), R"("model":"gpt-4o")");
}

TEST(ApiRequest, C2_DuplicateKeysAreRejectedEvenWhenEscaped) {
    ApiRequest req;
    auto err = parse_api_request(Endpoint::chat_completions, R"({"model":"a","model":"b"})", req);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->code, "duplicate_key");
    err = parse_api_request(Endpoint::chat_completions, R"({"model":"a","mod\u0065l":"b"})", req);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->code, "duplicate_key");
}

TEST(ApiRequest, C2_DuplicateKeysNameTheFirstRepeatInShortAndLongBodies) {
    for (const int fields : {4, 40}) {
        SCOPED_TRACE(fields);
        // f0..fN, then f2 again, then f1 again: f2 is the first key seen twice.
        std::string body = R"({"model":"m")";
        for (int i = 0; i < fields; ++i) {
            body += ",\"f" + std::to_string(i) + "\":" + std::to_string(i);
        }
        body += R"(,"f2":0,"f1":0})";
        ApiRequest req;
        auto err = parse_api_request(Endpoint::chat_completions, body, req);
        ASSERT_TRUE(err);
        EXPECT_EQ(err->code, "duplicate_key");
        EXPECT_EQ(err->param, "f2");
        body = R"({"model":"m")";
        for (int i = 0; i < fields; ++i) {
            body += ",\"f" + std::to_string(i) + "\":" + std::to_string(i);
        }
        EXPECT_FALSE(parse_api_request(Endpoint::chat_completions, body + "}", req));
        EXPECT_EQ(req.member_spans.size(), static_cast<std::size_t>(fields) + 1);
    }
}

TEST(ApiRequest, ValidatesModelAndStream) {
    ApiRequest req;
    EXPECT_EQ(parse_api_request(Endpoint::chat_completions, R"({"messages":[]})", req)->param, "model");
    EXPECT_EQ(parse_api_request(Endpoint::chat_completions, R"({"model":""})", req)->param, "model");
    EXPECT_EQ(parse_api_request(Endpoint::chat_completions, R"({"model":"m","stream":"true"})", req)->param,
              "stream");
    EXPECT_EQ(parse_api_request(Endpoint::chat_completions, R"([1])", req)->code, "invalid_json");
    EXPECT_EQ(parse_api_request(Endpoint::chat_completions, R"({"model":)", req)->code, "invalid_json");
    ASSERT_FALSE(parse_api_request(Endpoint::chat_completions,
                                   R"({"model":"m","stream":true,"stream_options":{"include_usage":true}})",
                                   req));
    EXPECT_TRUE(req.stream);
    EXPECT_TRUE(req.client_wants_usage);
    EXPECT_EQ(req.model, "m");
}

}  // namespace
}  // namespace sluice
