#pragma once

// The client's side of a stream: encoders that write typed deltas (sluice/delta.hpp) as the
// client's dialect, and the decoder of OpenAI chat chunks (the wire format of OpenAI-compatible
// providers) into deltas.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>
#include <sluice/delta.hpp>

#include "json/json_reader.hpp"
#include "sse/sse.hpp"

namespace sluice {

/// Deltas -> OpenAI chat.completion.chunk events. The chunks' id and model come from the start
/// delta; every chunk carries "usage": null when the client asked for usage, and the usage chunk
/// (empty choices) goes out only then. Ends with `data: [DONE]`.
class OpenAiChunkEncoder : public DeltaSink {
public:
    explicit OpenAiChunkEncoder(bool client_wants_usage) : client_wants_usage_(client_wants_usage) {}
    bool on_delta(StreamDelta&& d, std::string& out) override;
    bool on_end(std::string& out) override;

private:
    void chunk(int choice, nlohmann::json delta, const nlohmann::json& finish, std::string& out) const;

    bool client_wants_usage_;
    std::string id_;
    std::string model_;
    std::int64_t created_ = 0;
};

/// Deltas -> Anthropic Messages events (message_start, one content block per text, thinking or
/// tool-use run, message_delta with the stop reason and usage, message_stop). `model` is the
/// model the client asked for. Only the first choice is written (Messages has no choices).
class AnthropicEventEncoder : public DeltaSink {
public:
    explicit AnthropicEventEncoder(std::string model) : model_(std::move(model)) {}
    bool on_delta(StreamDelta&& d, std::string& out) override;
    bool on_end(std::string& out) override;

private:
    enum class Block : std::uint8_t {
        none,
        text,
        thinking,
        tool
    };
    void start(std::string_view id, std::string& out);
    void open(Block kind, const nlohmann::json& content_block, std::string& out);
    void open_tool(int tool, std::string& out);
    void close_block(std::string& out);

    std::string model_;
    bool started_ = false;
    Usage usage_{0, 0, 0};
    std::int64_t cached_ = 0;
    Block block_ = Block::none;
    int block_index_ = -1;
    int current_tool_ = -1;                                     ///< the tool index of the open tool_use block
    std::map<int, std::pair<std::string, std::string>> tools_;  ///< index -> id, name
    std::string stop_reason_ = "end_turn";
};

/// OpenAI's finish_reason as an Anthropic stop_reason, and back.
std::string anthropic_stop_reason(std::string_view finish);
std::string openai_finish_reason(std::string_view stop_reason);

/// The encoder for the client's dialect: Anthropic events for /v1/messages, OpenAI chunks else.
std::unique_ptr<DeltaSink> make_client_encoder(const ApiRequest& req);

/// Reads an OpenAI usage object strictly into `usage` (prompt and completion tokens), the cached
/// prompt tokens and, when given, the reasoning tokens (left alone when not reported).
void read_chat_usage(json::Reader& r, const nlohmann::json& u, Usage& usage, std::int64_t& cached,
                     std::int64_t* reasoning = nullptr);

/// OpenAI chat.completion.chunk events (an OpenAI-compatible provider's stream) -> deltas: used
/// when the client speaks another dialect or a stream filter needs deltas. Usage is read
/// strictly; an error chunk stops the stream with the provider's error.
class OpenAiChunkDecoder : public DeltaRelay {
public:
    explicit OpenAiChunkDecoder(std::unique_ptr<DeltaSink> sink) : DeltaRelay(std::move(sink)) {}
    bool on_event(const sse::Event& ev, std::string& out) override;
    bool finished() const override { return done_; }
    Usage usage() const override { return usage_; }

    static constexpr std::size_t kMaxToolCalls = 4096;

private:
    void handle(json::Reader& r, const nlohmann::json& chunk, std::string& out);
    void handle_choice(json::Reader& r, const nlohmann::json& choice, std::string& out);
    void handle_tool_calls(json::Reader& r, int choice, const nlohmann::json& calls, std::string& out);

    bool started_ = false;
    bool done_ = false;
    Usage usage_;
    std::set<std::pair<int, std::int64_t>> tools_seen_;  ///< (choice, tool index)
};

}  // namespace sluice
