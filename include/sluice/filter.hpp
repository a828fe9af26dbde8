#pragma once

// The filter interface: the hooks a capability (authentication, rate limits, guardrails,
// caching, metrics, cost) implements to act at a point of a request's life. The phases follow
// Pingora's ProxyHttp (request_filter, upstream_request_filter, upstream_response_filter,
// response_filter, logging) and Envoy's HTTP filter chain (decodeHeaders ... encodeHeaders,
// access loggers after the stream): the names differ, the order is the same.
//
// A request's hooks, in the order they run (docs/ARCHITECTURE.md walks one request through them):
//
//   on_request            every filter in chain order, before routing; the first that does not
//                         proceed answers the request (an error or a served 200)
//   on_upstream_request   per attempt, after the provider built the request, before a byte leaves
//   on_upstream_response  per attempt, once the provider's response head is in (any status)
//   on_stream             per streaming attempt, before its first byte is read: a StreamFilter
//                         (sluice/delta.hpp) that sees every delta of the answer, in chain order
//   on_response_body      once per non-stream 2xx answer, translated to the client's dialect,
//                         before its head: a dialect-neutral view of its text (ResponseBody)
//   on_response_head      once, before the client's response head is written (any status)
//   on_complete           exactly once per request that reached the filters, whatever ended it:
//                         an answer, a filter's reply, the client leaving, a cut upstream, a drain
//
// Filters are built once from config (src/filters/registry.cpp), const and shared by every
// worker thread: per-request state lives in the RequestContext, shared state in an injected,
// thread-safe service (sluice/clock.hpp: Services). A hook never throws and never blocks; only
// on_request may wait (it is a coroutine), e.g. on a state store.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <sluice/delta.hpp>
#include <sluice/error.hpp>
#include <sluice/provider.hpp>
#include <sluice/request_context.hpp>

namespace sluice {

/// An answer the gateway gives itself instead of routing (a cache hit, a canned answer).
struct ServedResponse {
    /// The JSON body; for a stream, the complete event-stream text in the client's dialect
    /// (what a cache stored from an earlier answer), written as it is.
    std::string body;
    bool stream = false;
    Usage usage;  ///< what the served answer reports, for the completion hooks
};

/// What a request filter decided.
struct RequestVerdict {
    enum class Kind {
        proceed,
        reject,
        serve
    };
    Kind kind = Kind::proceed;
    GatewayError error;     ///< reject: answered in the client's dialect (OpenAI or Anthropic shape)
    ServedResponse served;  ///< serve: answered with status 200

    static RequestVerdict proceed() { return {}; }
    static RequestVerdict reject(GatewayError e) {
        RequestVerdict v;
        v.kind = Kind::reject;
        v.error = std::move(e);
        return v;
    }
    static RequestVerdict serve(ServedResponse r) {
        RequestVerdict v;
        v.kind = Kind::serve;
        v.served = std::move(r);
        return v;
    }
};

/// Headers filters add to the client's response head.
class ResponseHeaders {
public:
    /// Adds `name: value`. Refused (false, nothing added) when the name is not an HTTP token,
    /// the value holds CR, LF or NUL, or the name is one sluice writes itself (framing,
    /// Content-Type, Connection, Date, Server).
    bool add(std::string_view name, std::string_view value);
    const std::vector<std::pair<std::string, std::string>>& fields() const noexcept { return fields_; }
    bool empty() const noexcept { return fields_.empty(); }

private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

/// The head of one upstream answer, as filters see it.
class UpstreamResponseHead {
public:
    /// `head` is null for in-process providers (kind: mock), which have no HTTP head.
    UpstreamResponseHead(const Provider& p, int status, const http1::MessageHead* head)
        : provider_(p), status_(status), head_(head) {}
    const Provider& provider() const noexcept { return provider_; }
    int status() const noexcept { return status_; }
    /// First value of the named header (case-insensitive); empty when absent.
    std::string_view header(std::string_view name) const noexcept;

private:
    const Provider& provider_;
    int status_;
    const http1::MessageHead* head_;
};

/// One piece of a non-stream answer's content a filter may read and rewrite.
struct BodyPart {
    /// text (answer text), reasoning (reasoning text returned to the client) or tool_args (a tool
    /// call's arguments, JSON text: an edit must stay a JSON object).
    StreamDelta::Kind kind = StreamDelta::Kind::text;
    int choice = 0;
    int tool = 0;  ///< tool_args: the call's index within its choice
    std::string text;
};

/// A non-stream answer as filters see it, whatever the client's dialect (OpenAI chat completion
/// or Anthropic message): its content in answer order, each choice's finish reason in OpenAI's
/// vocabulary (stop, length, tool_calls, content_filter) and the usage. Edit a part's text to
/// rewrite the answer; the client's JSON is changed only where a part changed.
struct ResponseBody {
    std::vector<BodyPart> parts;
    std::vector<std::string> finish_reasons;  ///< per choice
    Usage usage;
};

/// How a request ended, for the completion hooks.
struct Outcome {
    using Clock = std::chrono::steady_clock;
    int status = 0;                     ///< what the client got; 499 when it left before an answer
    std::string_view error_code;        ///< empty on success; else the code in the error or terminal event
    bool client_gone = false;           ///< the client left before the answer was complete
    bool served = false;                ///< a request filter answered (an error or a served 200)
    bool stream = false;                ///< the client asked for a stream
    Usage billed;                       ///< usage of the answer the client got (partial for a cut stream)
    std::span<const Attempt> attempts;  ///< every upstream attempt, each with its own usage
    Clock::duration total{};            ///< head parsed -> last byte written
    Clock::duration upstream{};         ///< waiting on providers
    Clock::duration retry_wait{};       ///< backoff and Retry-After waits
    std::optional<Clock::duration> first_byte;  ///< head parsed -> first response byte
};

class Filter {
public:
    /// The hooks a filter implements, declared by hooks(): the chain calls only those, so a
    /// filter costs nothing at the phases it does not use.
    enum Hook : unsigned {
        request = 1U << 0,
        upstream_request = 1U << 1,
        upstream_response = 1U << 2,
        response_head = 1U << 3,
        complete = 1U << 4,
        stream = 1U << 5,
        response_body = 1U << 6,
    };

    virtual ~Filter() = default;
    virtual std::string_view name() const noexcept = 0;
    /// The Hook bits of the hooks this filter overrides.
    virtual unsigned hooks() const noexcept = 0;

    /// Before routing. Continue (proceed), answer with an error (reject), or answer 200 from
    /// the gateway (serve). May read and fill the context (key, route, the parsed request).
    virtual boost::asio::awaitable<RequestVerdict> on_request(RequestContext& ctx) const;
    /// Per attempt, after the provider translated the request, before a byte is sent. May add
    /// headers (they are checked for CR/LF/NUL before sending) or refuse the attempt with an
    /// error (not retried).
    virtual std::optional<GatewayError> on_upstream_request(RequestContext& /*ctx*/, const Target& /*target*/,
                                                            UpstreamRequest& /*req*/) const {
        return std::nullopt;
    }
    /// Per attempt, when the provider's response head arrived (errors and 1xx-skipped heads
    /// included). Read-only: the attempt's fate is decided by the router.
    virtual void on_upstream_response(RequestContext& /*ctx*/, const UpstreamResponseHead& /*head*/) const {}
    /// Per streaming attempt, before the provider's first event is decoded: a filter over this
    /// attempt's deltas, or null when this request needs none (the stream then keeps its raw
    /// passthrough when no other filter asks either). A retried attempt gets a new one.
    virtual std::unique_ptr<StreamFilter> on_stream(const RequestContext& /*ctx*/) const { return nullptr; }
    /// Once per non-stream 2xx answer (after translation to the client's dialect, before its
    /// head is written): read or rewrite its content, or refuse it with an error the client gets
    /// instead (the gateway's verdict: never retried, never sent to a fallback).
    virtual std::optional<GatewayError> on_response_body(const RequestContext& /*ctx*/,
                                                         ResponseBody& /*body*/) const {
        return std::nullopt;
    }
    /// Once per request, before its response head goes to the client (errors, served and
    /// streamed answers included): add headers such as x-ratelimit-* or x-sluice-cache.
    virtual void on_response_head(const RequestContext& /*ctx*/, int /*status*/,
                                  ResponseHeaders& /*headers*/) const {}
    /// Exactly once per request that reached the filters, after its last byte was written (or
    /// the client left). Runs in chain order; the access log is the last one.
    virtual void on_complete(const RequestContext& /*ctx*/, const Outcome& /*outcome*/) const {}
};

}  // namespace sluice
