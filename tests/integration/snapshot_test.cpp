// The runtime snapshot: each worker serves from its own copy, swapped by a posted message, so a
// request takes no lock to read it and a new snapshot (a config reload) never changes a request
// that has already started.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "gateway.hpp"
#include "http_client.hpp"
#include "mock_upstream.hpp"
#include "test_certs.hpp"

namespace sluice::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string config_for(const MockUpstream& up, const std::string& upstream_model) {
    return "providers:\n  up:\n    kind: openai\n    base_url: \"" + up.base_url() +
           "\"\n    api_key: \"sk-snapshot\"\nroutes:\n  - model: \"m\"\n    targets: [{provider: up, model: "
           "\"" +
           upstream_model + "\"}]\n";
}

std::string tls_config_for(const MockUpstream& up, const std::string& upstream_model) {
    return "providers:\n  up:\n    kind: openai\n    base_url: \"" + up.base_url() +
           "\"\n    api_key: \"sk-snapshot\"\n    ca_file: \"" + test_certs().ca_cert +
           "\"\nroutes:\n  - model: \"m\"\n    targets: [{provider: up, model: \"" + upstream_model +
           "\"}]\n";
}

std::string chat(bool stream, const std::string& mock = "{}") {
    return std::string(R"({"model":"m","stream":)") + (stream ? "true" : "false") +
           R"(,"messages":[{"role":"user","content":"hi"}],"mock":)" + mock + "}";
}

std::string upstream_model_of(const RecordedRequest& r) {
    const auto body = json::parse(r.body, nullptr, false);
    return body.is_object() && body.contains("model") && body["model"].is_string()
               ? body["model"].get<std::string>()
               : "";
}

TEST(Snapshot, APublishedRuntimeServesTheNextRequestWhileAStreamInFlightFinishesOnItsOwn) {
    MockUpstream up;
    Gateway gw(config_for(up, "before"), 1);
    Client keep(gw.port());
    ASSERT_EQ(keep.post_json("/v1/chat/completions", chat(false)).status, 200);
    ASSERT_EQ(upstream_model_of(up.requests().back()), "before");

    // A stream of 10 events, 100 ms apart, starts on the first snapshot.
    Client streaming(gw.port(), 15s);
    const std::string body = chat(true, R"({"chunks":10,"chunk_delay_ms":100})");
    streaming.send_raw(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body);
    ASSERT_NE(streaming.read_until("data: ", 5s).find("200 OK"), std::string::npos);

    gw.publish(config_for(up, "after"));
    std::this_thread::sleep_for(50ms);  // the worker takes it from its queue
    // The next request, also on a connection opened before the swap, uses the new snapshot.
    const auto r = keep.post_json("/v1/chat/completions", chat(false));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(upstream_model_of(up.requests().back()), "after");
    Client fresh(gw.port());
    EXPECT_EQ(fresh.post_json("/v1/chat/completions", chat(false)).status, 200);
    EXPECT_EQ(upstream_model_of(up.requests().back()), "after");

    // The stream that started before runs to its end on the snapshot it took (which stays
    // alive for it: ASan would report a freed runtime).
    const std::string rest = streaming.read_until("\r\n0\r\n\r\n", 10s);
    EXPECT_NE(rest.find("[DONE]"), std::string::npos) << rest;
    EXPECT_EQ(upstream_model_of(up.requests()[1]), "before");
}

TEST(Snapshot, ARequestWhoseHeadCameBeforeAPublishIsForwardedWithItsOwnSnapshotsProviderAndTls) {
    MockUpstreamOptions o;
    o.cert_file = test_certs().server_cert;
    o.key_file = test_certs().server_key;
    MockUpstream up(o);
    Gateway gw(tls_config_for(up, "before"), 1);
    // The head and most of the body arrive; then a new snapshot is published; then the rest.
    Client c(gw.port(), 15s);
    const std::string body = chat(false);
    const std::string head =
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n";
    c.send_raw(head + body.substr(0, body.size() - 5));
    std::this_thread::sleep_for(100ms);
    gw.publish(tls_config_for(up, "after"));
    std::this_thread::sleep_for(100ms);
    c.send_raw(body.substr(body.size() - 5));
    // The attempt runs on the request's snapshot: its provider, its TLS context, its route.
    const std::string got = c.read_until("\"usage\"", 10s);
    EXPECT_NE(got.find("200 OK"), std::string::npos) << got;
    ASSERT_EQ(up.request_count(), 1u);
    EXPECT_EQ(upstream_model_of(up.requests().back()), "before");
    // And the next request uses the new one.
    Client next(gw.port());
    EXPECT_EQ(next.post_json("/v1/chat/completions", chat(false)).status, 200);
    EXPECT_EQ(upstream_model_of(up.requests().back()), "after");
}

}  // namespace
}  // namespace sluice::test
