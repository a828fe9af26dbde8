#pragma once

#include <sluice/config.hpp>
#include <sluice/provider.hpp>

#include "providers/configured_provider.hpp"
#include "providers/openai_wire.hpp"

namespace sluice {

/// Options of the deterministic OpenAI-format answer generator.
struct MockOptions {
    std::vector<std::string> models;  ///< GET /models list
    int embedding_dimensions = 8;
    int stream_chunks = 0;  ///< content chunks in a stream; 0 = one per word
    std::string content;    ///< fixed answer text; empty = derived from the prompt
};

/// Generates an OpenAI-format answer for `endpoint` from the (already rewritten) request body:
/// chat completions (text, or a call of the first tool when tools are given), legacy
/// completions, embeddings (float or base64) and model lists, as JSON or as a complete SSE text.
/// Deterministic: the same request gives the same bytes. Used by `kind: mock` and by the mock
/// upstream server of the tests and benchmarks.
LocalResponse mock_generate(Endpoint endpoint, std::string_view body, const MockOptions& opts);
LocalResponse mock_models(const MockOptions& opts);
/// Sample tool arguments (JSON text) satisfying a JSON schema's required properties.
std::string mock_tool_arguments(std::string_view schema_json);

/// `kind: mock`: answers in-process, composed with OpenAI's wire format like an OpenAI provider
/// (same body rewriting, same stream relay), so it exercises everything but the network.
class MockProvider : public ConfiguredProvider {
public:
    explicit MockProvider(const ProviderConfig& cfg);
    std::string_view kind() const noexcept override { return "mock"; }
    bool enabled() const noexcept override { return true; }
    bool local() const noexcept override { return true; }
    LocalResponse respond_locally(const UpstreamRequest& req) const override;

    std::optional<GatewayError> build_request(const ApiRequest& req, std::string_view upstream_model,
                                              UpstreamRequest& out) const override;
    std::optional<UpstreamRequest> models_request() const override;
    std::vector<std::string> parse_models(std::string_view body) const override {
        return model_ids_from_list(body);
    }
    std::unique_ptr<StreamRelay> make_stream_relay(const ApiRequest& req, StreamOutput out,
                                                   std::int64_t /*now*/) const override {
        return OpenAiWire::stream_relay(req, std::move(out));
    }
    std::optional<GatewayError> translate_response(const ApiRequest& /*req*/, std::string& body,
                                                   std::int64_t /*now_unix*/, Answer& answer) const override {
        return wire_.read_answer(body, answer);
    }

private:
    OpenAiWire wire_;
    MockOptions opts_;
};

}  // namespace sluice
