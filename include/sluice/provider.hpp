#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sluice/error.hpp>

namespace sluice {

namespace json {
struct Member;
}
namespace sse {
struct Event;
}
struct StreamOutput;  // sluice/delta.hpp

/// The endpoints sluice serves: OpenAI's, and Anthropic's Messages API (the front door).
enum class Endpoint {
    chat_completions,
    completions,
    embeddings,
    models,
    messages,
    count_tokens
};
/// True for the Anthropic-format endpoints (answers and errors in Anthropic's shape).
inline bool anthropic_format(Endpoint e) noexcept {
    return e == Endpoint::messages || e == Endpoint::count_tokens;
}
std::string_view endpoint_name(Endpoint e) noexcept;

/// Token counts read from the provider's answer. -1 = not reported.
struct Usage {
    std::int64_t prompt_tokens = -1;
    std::int64_t completion_tokens = -1;
    std::int64_t total_tokens = -1;
    bool known() const noexcept { return prompt_tokens >= 0 || completion_tokens >= 0; }
};

/// The client's request body as sluice understood it: validated JSON, its top-level members
/// (raw spans into `body`) and the fields routing and streaming depend on.
struct ApiRequest {
    Endpoint endpoint = Endpoint::chat_completions;
    std::string body;
    std::vector<std::pair<std::size_t, std::size_t>> member_spans;  ///< [begin, end) per member
    std::string model;
    bool stream = false;
    bool client_wants_usage = false;  ///< stream_options.include_usage == true
    /// Offsets of `"model": <value>` value and of the stream_options member, when present.
    std::pair<std::size_t, std::size_t> model_value{0, 0};
    std::optional<std::pair<std::size_t, std::size_t>> stream_options_member;
    /// Client headers that describe the request's dialect and may reach a provider of that same
    /// dialect (anthropic-version, anthropic-beta on /v1/messages). Never credentials or hosts.
    std::vector<std::pair<std::string, std::string>> dialect_headers;
};

/// An HTTP request to send upstream, built by a provider from an ApiRequest.
struct UpstreamRequest {
    std::string method = "POST";
    std::string target;  ///< origin-form path and query, e.g. "/v1/chat/completions"
    std::vector<std::pair<std::string, std::string>> headers;  ///< provider auth and extras
    std::string body;
    std::string content_type = "application/json";
};

/// A response a provider produced without network I/O (the built-in mock).
struct LocalResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;  ///< JSON, or the complete SSE text for a stream
};

/// The most a stream relay buffers from the provider at once (an SSE event built from many
/// `data:` lines, thinking and signature text, a tool's arguments): past it the stream fails
/// instead of growing.
inline constexpr std::size_t kMaxStreamBuffer = 8 * 1024 * 1024;

/// Turns upstream SSE events into the events the client receives and reads usage on the way.
/// One per streaming request; not thread-safe. Does no I/O.
///
/// A relay never writes an error event itself: when the provider's stream cannot go on (an
/// answer sluice cannot read, a buffer over kMaxStreamBuffer, an error the provider reported in
/// the stream) its handler returns false and error() tells why. The forwarder then answers a 502
/// (nothing sent yet; retried when the error allows it) or ends the stream with a terminal error
/// event, scrubbed of the provider's secrets, in the client's dialect.
class StreamRelay {
public:
    virtual ~StreamRelay() = default;
    /// Handles one upstream event; appends zero or more encoded client events to `out`.
    virtual bool on_event(const sse::Event& ev, std::string& out) = 0;
    /// True for providers whose stream is not SSE (Bedrock's binary event-stream): the forwarder
    /// then hands raw body bytes to on_bytes() instead of decoded SSE events to on_event().
    virtual bool wants_bytes() const { return false; }
    /// Raw stream bytes, split anywhere.
    virtual bool on_bytes(std::string_view /*bytes*/, std::string& /*out*/) { return true; }
    /// True when the relay has a fast path for plain events (on_plain_data).
    virtual bool takes_plain_data() const { return false; }
    /// Byte strings (at most 8) whose presence in an event means it must be decoded and given
    /// to on_event() (e.g. a usage or error key). The caller searches each read for them once,
    /// so events without any cost a few comparisons.
    virtual std::span<const std::string_view> plain_data_markers() const { return {}; }
    /// Fast path for a complete event that is exactly "data: <data>\n\n" (one line, no CR;
    /// `raw` is those bytes) and holds none of the markers: append what the client gets to
    /// `out` and return true, or return false to have the event decoded and passed to
    /// on_event() instead. Must give the same output on_event() would.
    virtual bool on_plain_data(std::string_view /*data*/, std::string_view /*raw*/, std::string& /*out*/) {
        return false;
    }
    /// The upstream body ended cleanly: append what closes the client's stream when the provider
    /// has no end marker of its own (Gemini: the finish chunk, usage and `[DONE]`).
    virtual bool on_end(std::string& /*out*/) { return true; }
    /// True once the stream is complete (e.g. `data: [DONE]` seen or written).
    virtual bool finished() const = 0;
    virtual Usage usage() const = 0;
    /// Why the last handler returned false.
    const GatewayError& error() const noexcept { return error_; }

protected:
    /// Records why the stream stops; returns false for `return fail(...)`.
    bool fail(GatewayError e) {
        error_ = std::move(e);
        return false;
    }
    /// An answer of the provider sluice cannot read (502 upstream_invalid_response).
    bool fail_invalid(std::string message) {
        return fail(GatewayError::upstream_error("The provider's stream is invalid: " + std::move(message),
                                                 "upstream_invalid_response"));
    }

private:
    GatewayError error_;
};

/// What a provider read from a complete non-stream answer.
struct Answer {
    Usage usage;
    /// The model declined under its content policy, in the provider's own words (OpenAI's and
    /// Azure's finish_reason content_filter, Anthropic's stop_reason refusal, Gemini's SAFETY and
    /// related finish reasons, Bedrock's content_filtered and guardrail_intervened): a route's
    /// on_content_policy fallback takes over.
    bool refused = false;
};

/// Where and how to reach a provider over the network, with its timeouts and limits.
struct UpstreamSettings {
    bool tls = false;
    std::string host;
    std::uint16_t port = 0;
    std::chrono::milliseconds connect_timeout{10000};
    std::chrono::milliseconds first_byte_timeout{60000};
    std::chrono::milliseconds idle_timeout{120000};
    std::chrono::milliseconds request_timeout{600000};
    std::chrono::milliseconds first_token_timeout{0};  ///< streams; 0 = off
    std::chrono::milliseconds pool_idle_timeout{55000};
    std::size_t max_connections = 256;
    std::size_t max_response_bytes = 64 * 1024 * 1024;
    /// Secrets to scrub from anything the provider sends back (its key; Bedrock's access key
    /// id, secret key and session token).
    std::vector<std::string> secrets;
};

/// The headers of a provider's answer, read-only.
class HeaderView {
public:
    virtual ~HeaderView() = default;
    /// First value of the named header (case-insensitive); empty when absent.
    virtual std::string_view find(std::string_view name) const noexcept = 0;
};
/// No headers (answers of in-process providers, tests).
class NoHeaders final : public HeaderView {
public:
    std::string_view find(std::string_view /*name*/) const noexcept override { return {}; }
};

/// An upstream error answer as its provider reads it.
struct ProviderError {
    /// What sluice answers with: status kept (401/403 become 502), text re-wrapped in OpenAI's
    /// shape and scrubbed of secrets, code and type in the vocabulary the router classifies
    /// (context_length_exceeded, content_policy_violation, rate_limit_exceeded, insufficient_quota).
    GatewayError error;
    /// How long the provider asked to be left alone (its Retry-After headers, or the body's own
    /// retry hint); nullopt when it said nothing.
    std::optional<std::chrono::milliseconds> retry_after;
};

/// The Host header value for an upstream (port only when not the scheme's default).
std::string host_header(const UpstreamSettings& s);

/// One configured provider. Built once from config, immutable, shared by all workers; translates
/// and never opens a socket (the forwarder does the I/O).
class Provider {
public:
    virtual ~Provider() = default;
    virtual const std::string& name() const noexcept = 0;
    virtual std::string_view kind() const noexcept = 0;
    /// False when the provider was configured but cannot be used (e.g. its key variable is unset).
    virtual bool enabled() const noexcept { return true; }
    /// True for providers that answer in-process (kind: mock).
    virtual bool local() const noexcept { return false; }
    /// True for providers that take Anthropic Messages requests as they are (kind anthropic):
    /// the /v1/messages front door passes through. Others get the request as OpenAI chat.
    virtual bool takes_messages() const noexcept { return false; }
    /// The provider's drop_unsupported_params: what a translation cannot express is left out
    /// instead of refused.
    virtual bool drops_unsupported_params() const noexcept { return false; }
    virtual const UpstreamSettings& settings() const noexcept = 0;

    /// Builds the upstream request. `upstream_model` is the target's model (or the client's).
    virtual std::optional<GatewayError> build_request(const ApiRequest& req, std::string_view upstream_model,
                                                      UpstreamRequest& out) const = 0;
    /// The request that lists the provider's models (GET /models); nullopt if unsupported.
    virtual std::optional<UpstreamRequest> models_request() const = 0;
    /// Model ids from a models-list response body.
    virtual std::vector<std::string> parse_models(std::string_view body) const = 0;

    /// The relay of one streaming attempt: the provider's events decoded into deltas for
    /// `out.sink` (the client's encoder behind the request's stream filters), or passed through
    /// untouched when `out.passthrough` is the provider's own dialect. `now` (seconds since the
    /// epoch) dates what the relay writes.
    virtual std::unique_ptr<StreamRelay> make_stream_relay(const ApiRequest& req, StreamOutput out,
                                                           std::int64_t now) const = 0;
    /// The Content-Type a streamed answer must have (a prefix match).
    virtual std::string_view stream_content_type() const noexcept { return "text/event-stream"; }
    /// Turns a complete non-stream 2xx body into the body the client gets (in place: OpenAI's
    /// format, or Anthropic's when a Messages request passed through) and reads what the router
    /// and the bill need from it into `answer`. OpenAI-compatible providers leave the body as it
    /// is. `now_unix` (seconds since the epoch) dates a translated answer.
    virtual std::optional<GatewayError> translate_response(const ApiRequest& req, std::string& body,
                                                           std::int64_t now_unix, Answer& answer) const = 0;
    /// Reads an upstream error answer: the error sluice answers with and the pause the provider
    /// asked for. Each provider reads its own headers and body (Azure's retry-after-ms, Gemini's
    /// RetryInfo, Bedrock's x-amzn-ErrorType); `now_unix` (seconds) dates an HTTP-date Retry-After.
    virtual ProviderError translate_error(int status, const HeaderView& headers, std::string_view body,
                                          std::int64_t now_unix) const = 0;

    /// For local() providers: answers the request built by build_request().
    virtual LocalResponse respond_locally(const UpstreamRequest& req) const;

    /// `text` with every secret of this provider masked (and sk-style keys, bearer tokens and
    /// key= parameters), capped at `max_len` bytes: for anything the provider wrote that goes to
    /// a client or a log.
    std::string scrub(std::string_view text, std::size_t max_len = 1024) const;
    /// The error with its message, type, code and param scrubbed.
    GatewayError scrubbed(GatewayError e) const;

protected:
    /// The pause in the standard headers: retry-after-ms, x-ms-retry-after-ms (Azure), then
    /// Retry-After (seconds or an HTTP date).
    static std::optional<std::chrono::milliseconds> retry_after_headers(const HeaderView& headers,
                                                                        std::int64_t now_unix);
};

}  // namespace sluice
