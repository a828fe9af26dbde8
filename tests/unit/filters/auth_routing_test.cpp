#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include "http/http_parser.hpp"
#include "runtime/runtime.hpp"
#include "util/strings.hpp"

namespace sluice {
namespace {

std::shared_ptr<const Runtime> runtime() {
    const std::map<std::string, std::string> env;
    return Runtime::build(
        load_config_text("providers:\n"
                         "  mock: {kind: mock}\n"
                         "routes:\n"
                         "  - model: \"gpt-4o-mini\"\n"
                         "    targets: [{provider: mock, model: \"mock-mini\"}]\n"
                         "  - model: \"mock-*\"\n"
                         "    targets: [{provider: mock}]\n"
                         "keys:\n"
                         "  - name: all\n"
                         "    key: \"key-all\"\n"
                         "  - name: limited\n"
                         "    key: \"key-limited\"\n"
                         "    models: [\"gpt-4o*\"]\n"
                         "  - name: hashed\n"
                         "    sha256: \"" +
                             sha256_hex("key-hashed") + "\"\n",
                         &env));
}

http1::MessageHead head(const std::string& extra) {
    http1::MessageHead h;
    std::size_t consumed = 0;
    http1::ParseError err;
    const std::string raw = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n";
    EXPECT_EQ(http1::parse_request_head(raw, {}, h, consumed, err), http1::ParseStatus::done);
    return h;
}

std::optional<GatewayError> run(const Runtime& rt, const std::string& headers, const std::string& body,
                                RequestContext** out = nullptr, ConnectionMemo* memo = nullptr) {
    static http1::MessageHead h;
    h = head(headers);
    static std::unique_ptr<RequestContext> ctx;
    ctx = std::make_unique<RequestContext>(rt, h);
    ctx->api.body = body;
    ctx->connection = memo;
    boost::asio::io_context io;
    auto fut = boost::asio::co_spawn(io, rt.filters().on_request(*ctx), boost::asio::use_future);
    io.run();
    if (out != nullptr) {
        *out = ctx.get();
    }
    RequestVerdict v = fut.get();
    if (v.kind == RequestVerdict::Kind::reject) {
        return v.error;
    }
    return std::nullopt;
}

const std::string kBody = R"({"model":"gpt-4o-mini","messages":[]})";

TEST(Auth, B1_MissingOrInvalidKeysGet401) {
    auto rt = runtime();
    for (const std::string& h :
         {std::string(""), std::string("Authorization: Bearer\r\n"),
          std::string("Authorization: Basic a2V5LWFsbA==\r\n"),
          std::string("Authorization: Bearer key-all'--\r\n"),
          "Authorization: Bearer " + std::string(10000, 'k') + "\r\n", std::string("x-api-key: nope\r\n")}) {
        auto err = run(*rt, h, kBody);
        ASSERT_TRUE(err) << h;
        EXPECT_EQ(err->status, 401);
        EXPECT_EQ(err->code, "invalid_api_key");
        EXPECT_EQ(err->to_json().find("key-all"), std::string::npos);
    }
}

TEST(Auth, AcceptsBearerXApiKeyAndApiKeyHeaders) {
    auto rt = runtime();
    RequestContext* ctx = nullptr;
    EXPECT_FALSE(run(*rt, "Authorization: Bearer key-all\r\n", kBody, &ctx));
    EXPECT_EQ(ctx->key->name, "all");
    EXPECT_FALSE(run(*rt, "authorization: bearer key-all\r\n", kBody, &ctx));
    EXPECT_FALSE(run(*rt, "x-api-key: key-all\r\n", kBody, &ctx));
    EXPECT_FALSE(run(*rt, "api-key: key-hashed\r\n", kBody, &ctx));
    EXPECT_EQ(ctx->key->name, "hashed");
}

// One connection carrying several callers' requests (a load balancer's keep-alive connection):
// the digest it remembers is reused only for the very key it was made from, so every request
// gets its own key's answer, whatever came before it on the connection.
TEST(Auth, AConnectionsRememberedKeyAnswersOnlyForThatKey) {
    auto rt = runtime();
    ConnectionMemo memo;
    RequestContext* ctx = nullptr;
    const auto bearer = [](const std::string& k) { return "Authorization: Bearer " + k + "\r\n"; };
    ASSERT_FALSE(run(*rt, bearer("key-all"), kBody, &ctx, &memo));
    EXPECT_EQ(ctx->key->name, "all");
    EXPECT_EQ(memo.key, "key-all");
    EXPECT_EQ(memo.key_digest, std::string(reinterpret_cast<const char*>(sha256("key-all").data()), 32));
    ASSERT_FALSE(run(*rt, bearer("key-all"), kBody, &ctx, &memo));
    EXPECT_EQ(ctx->key->name, "all");
    for (const std::string& wrong :
         {std::string("key-alm"), std::string("key-al"), std::string("Key-all"), std::string("key-all2")}) {
        auto err = run(*rt, bearer(wrong), kBody, &ctx, &memo);
        ASSERT_TRUE(err) << wrong;
        EXPECT_EQ(err->status, 401) << wrong;
    }
    ASSERT_FALSE(run(*rt, bearer("key-hashed"), kBody, &ctx, &memo));
    EXPECT_EQ(ctx->key->name, "hashed");
    ASSERT_FALSE(run(*rt, "x-api-key: key-all\r\n", kBody, &ctx, &memo));
    EXPECT_EQ(ctx->key->name, "all");
    auto err = run(*rt, bearer("key-limited"), R"({"model":"mock-gpt-4o","messages":[]})", &ctx, &memo);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->status, 403);
}

TEST(Auth, B2_AllowListGives403) {
    auto rt = runtime();
    auto err = run(*rt, "Authorization: Bearer key-limited\r\n", R"({"model":"mock-gpt-4o","messages":[]})");
    ASSERT_TRUE(err);
    EXPECT_EQ(err->status, 403);
    EXPECT_EQ(err->type, "permission_error");
    EXPECT_FALSE(run(*rt, "Authorization: Bearer key-limited\r\n", kBody));
}

TEST(Routing, MatchesInFileOrderAndRewritesTheModel) {
    auto rt = runtime();
    RequestContext* ctx = nullptr;
    ASSERT_FALSE(run(*rt, "Authorization: Bearer key-all\r\n", kBody, &ctx));
    EXPECT_EQ(ctx->route->pattern, "gpt-4o-mini");
    EXPECT_EQ(ctx->route->targets.front().model, "mock-mini");
    ASSERT_FALSE(run(*rt, "Authorization: Bearer key-all\r\n", R"({"model":"mock-x"})", &ctx));
    EXPECT_EQ(ctx->route->pattern, "mock-*");
    auto err = run(*rt, "Authorization: Bearer key-all\r\n", R"({"model":"claude"})");
    ASSERT_TRUE(err);
    EXPECT_EQ(err->status, 404);
    EXPECT_EQ(err->code, "model_not_found");
}

TEST(Glob, MatchesLikeShellGlobs) {
    EXPECT_TRUE(glob_match("mock-*", "mock-gpt-4o"));
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_TRUE(glob_match("gpt-4?-mini", "gpt-4o-mini"));
    EXPECT_TRUE(glob_match("o[134]*", "o3-mini"));
    EXPECT_FALSE(glob_match("o[134]*", "o2"));
    EXPECT_TRUE(glob_match("[!a]x", "bx"));
    EXPECT_FALSE(glob_match("mock-*", "gpt-mock-1"));
    EXPECT_TRUE(glob_match("a*b*c", "aXbYbZc"));
    EXPECT_TRUE(glob_match("lit\\*", "lit*"));
    EXPECT_FALSE(glob_match("lit\\*", "litx"));
    EXPECT_TRUE(glob_match("[abc", "[abc"));
    // Pathological pattern stays fast (single backtrack point).
    EXPECT_FALSE(glob_match("*a*a*a*a*a*a*a*b", std::string(5000, 'a')));
}

TEST(ErrorJson, HasOpenAiShape) {
    auto e = GatewayError::model_not_found("x\"y");
    EXPECT_EQ(
        e.to_json(),
        R"({"error":{"message":"The model 'x\"y' does not exist or is not routed by this gateway.","type":"invalid_request_error","param":"model","code":"model_not_found"}})");
    EXPECT_EQ(GatewayError::internal("a\nb").to_json(),
              R"({"error":{"message":"a\nb","type":"server_error","param":null,"code":"internal_error"}})");
}

}  // namespace
}  // namespace sluice
