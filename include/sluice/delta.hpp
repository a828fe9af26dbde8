#pragma once

// Typed stream deltas: the dialect-neutral form of a streamed answer. Each provider's stream
// decoder turns its wire format (OpenAI chunks, Anthropic events, Gemini chunks, Bedrock's
// event-stream) into deltas; the client's encoder (OpenAI chat chunks or Anthropic Messages
// events) writes them. Per-request stream filters sit between the two (sluice/filter.hpp).
//
//   provider bytes -> decoder -> StreamDelta ... -> [stream filters] -> encoder -> client bytes
//
// When no stream filter runs and the provider speaks the client's dialect, the relay skips
// deltas altogether and passes the provider's events through as they came.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sluice/error.hpp>
#include <sluice/provider.hpp>

namespace sluice {

/// One step of a streamed answer.
struct StreamDelta {
    enum class Kind : std::uint8_t {
        start,            ///< the answer begins (role assistant): id, model, created
        text,             ///< answer text: text
        reasoning,        ///< reasoning (thinking) text: text
        reasoning_block,  ///< a complete reasoning block to echo back (Anthropic thinking with its
                          ///< signature, or redacted thinking): text holds the block's JSON
        tool_call,        ///< a tool call starts: tool (its index), id, name, text (its first
                          ///< arguments, often empty), extra_content
        tool_args,        ///< a piece of a tool call's arguments (JSON text): tool, text
        finish,           ///< the choice is complete: finish_reason (OpenAI's vocabulary)
        usage,            ///< token counts: usage, cached_tokens, reasoning_tokens
        ping,             ///< a keep-alive with no content
    };
    Kind kind = Kind::text;
    int choice = 0;  ///< the choice index (several only with OpenAI's n)
    int tool = 0;    ///< tool_call, tool_args: the call's index within the answer
    std::string text;
    std::string id;             ///< start: the answer's id; tool_call: the call's id
    std::string name;           ///< start: the model; tool_call: the function's name
    std::string finish_reason;  ///< finish: stop, length, tool_calls, content_filter
    std::string extra_content;  ///< tool_call: OpenAI's extra_content object as JSON text (Gemini's
                                ///< thought signature); empty when none
    std::int64_t created = 0;   ///< start: seconds since the epoch
    Usage usage;
    std::int64_t cached_tokens = 0;      ///< usage: prompt tokens read from a cache
    std::int64_t reasoning_tokens = -1;  ///< usage: completion tokens spent reasoning; -1 = not reported

    static StreamDelta of(Kind k, std::string text = {}) {
        StreamDelta d;
        d.kind = k;
        d.text = std::move(text);
        return d;
    }
    /// True for the kinds whose text is content a filter may hold back or rewrite.
    bool carries_text() const noexcept {
        return kind == Kind::text || kind == Kind::reasoning || kind == Kind::tool_call ||
               kind == Kind::tool_args;
    }
};

/// Where a decoder sends its deltas: the client's encoder, or the stream filters in front of it.
/// One per streaming attempt; not thread-safe; does no I/O.
class DeltaSink {
public:
    virtual ~DeltaSink() = default;
    /// One delta; appends what the client gets now to `out`. false: the stream stops (error()).
    virtual bool on_delta(StreamDelta&& d, std::string& out) = 0;
    /// The provider's stream ended complete: appends what closes the client's stream.
    virtual bool on_end(std::string& out) = 0;
    /// Why on_delta or on_end returned false.
    const GatewayError& error() const noexcept { return error_; }

protected:
    bool fail(GatewayError e) {
        error_ = std::move(e);
        return false;
    }

private:
    GatewayError error_;
};

/// What a streaming request's relay writes to: the client's encoder behind the request's stream
/// filters, and the dialect in which the provider's events may pass through untouched.
struct StreamOutput {
    enum class Passthrough : std::uint8_t {
        none,       ///< a stream filter runs: every event is decoded to deltas
        openai,     ///< the client reads OpenAI chat chunks
        anthropic,  ///< the client reads Anthropic Messages events
    };
    std::unique_ptr<DeltaSink> sink;
    Passthrough passthrough = Passthrough::none;
};

/// A per-request filter over a streamed answer's deltas, made by Filter::on_stream for one
/// attempt. It may pass each delta, hold deltas back (up to holdback_limit() characters of
/// text), rewrite them or stop the stream. The client's response is committed at the first byte
/// released to it: a filter that stops before anything was released gives the client a clean
/// JSON error; after that the stream ends with a terminal event in the client's dialect.
class StreamFilter {
public:
    virtual ~StreamFilter() = default;
    /// The most characters (of text, reasoning and tool arguments, counted as UTF-8 code points)
    /// this filter takes in without releasing a delta. Past it the stream stops with a 500
    /// `stream_filter_error`: a filter never buffers a stream without bound.
    virtual std::size_t holdback_limit() const noexcept = 0;
    /// One delta, in stream order. Push onto `release` what goes on now, in order: `d` itself
    /// (pass), a rewritten delta, deltas held earlier, or nothing (hold back). Return an error
    /// to stop the stream (what was pushed is released first).
    virtual std::optional<GatewayError> on_delta(StreamDelta&& d, std::vector<StreamDelta>& release) = 0;
    /// The provider's stream ended complete: push what is still held.
    virtual std::optional<GatewayError> on_end(std::vector<StreamDelta>& release) = 0;
};

/// A provider's stream decoder that produces deltas (every relay but a raw passthrough): the
/// events it decodes go to the sink, and the sink's failure (a stream filter's stop) stops it.
class DeltaRelay : public StreamRelay {
protected:
    explicit DeltaRelay(std::unique_ptr<DeltaSink> sink) : sink_(std::move(sink)) {}
    /// Sends one delta on; false once the sink stopped the stream.
    bool push(StreamDelta&& d, std::string& out) {
        if (!stopped_ && !sink_->on_delta(std::move(d), out)) {
            stopped_ = true;
        }
        return !stopped_;
    }
    /// The provider's stream ended complete.
    bool push_end(std::string& out) {
        if (!stopped_ && !sink_->on_end(out)) {
            stopped_ = true;
        }
        return !stopped_;
    }
    /// True once the sink refused a delta; sink_failure() records its error for error().
    bool sink_stopped() const noexcept { return stopped_; }
    bool sink_failure() { return fail(sink_->error()); }

private:
    std::unique_ptr<DeltaSink> sink_;
    bool stopped_ = false;
};

/// UTF-8 code points in `s` (bytes that do not continue a sequence).
inline std::size_t utf8_length(std::string_view s) noexcept {
    std::size_t n = 0;
    for (const char c : s) {
        n += (static_cast<unsigned char>(c) & 0xC0U) != 0x80U ? 1 : 0;
    }
    return n;
}

}  // namespace sluice
