#pragma once

// The client response writer: the only code that knows the client's wire format and dialect
// (response heads, Content-Length or chunked framing, OpenAI or Anthropic error bodies, the
// terminal error event of a stream). Everything written to a client goes through it.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sluice/filter.hpp>

#include "server/server.hpp"

namespace sluice {

/// Response headers beyond the fixed ones.
using ExtraHeaders = std::vector<std::pair<std::string_view, std::string>>;

/// Appends x-sluice-provider, x-sluice-model, x-sluice-attempts, x-sluice-overhead-us (time
/// inside sluice, upstream time excluded) and server-timing to a head, once a request reached a
/// provider.
void append_transparency_headers(const RequestContext& ctx, std::string& head);

/// What a response head carries beyond status, type and length.
struct HeadExtras {
    const ExtraHeaders* extra = nullptr;           ///< the caller's own headers
    const RequestContext* transparency = nullptr;  ///< the request whose x-sluice-* headers go in
    const ResponseHeaders* added = nullptr;        ///< what response-head filters added
};

/// Builds a response head. `content_length` nullopt = chunked.
std::string response_head(int status, std::string_view content_type,
                          std::optional<std::size_t> content_length, std::string_view request_id, bool close,
                          const HeadExtras& extras = {});
/// The head of a request's answer: `extra`, the transparency headers and, once the request
/// reached the filters, what their response-head hooks add. Connection: close when the link
/// closes after this answer.
std::string answer_head(const ClientLink& link, const RequestContext& ctx, int status,
                        std::string_view content_type, std::optional<std::size_t> content_length,
                        const ExtraHeaders& extra);
/// The head of a streamed 200 (text/event-stream, chunked, no caching or proxy buffering).
std::string stream_head(const ClientLink& link, const RequestContext& ctx);

/// Writes buffers to the client under the write timeout; counts bytes and the first byte.
/// false when the client is gone or too slow (the connection then closes).
net::awaitable<bool> write_client(ClientLink& link, RequestContext& ctx,
                                  std::span<const net::const_buffer> buffers);

/// Sends a complete response with a body.
net::awaitable<bool> send_body(ClientLink& link, RequestContext& ctx, int status,
                               std::string_view content_type, const std::string& body,
                               const ExtraHeaders& extra = {});
/// Sends an error in the client's dialect (OpenAI's shape; Anthropic's on its front door), with
/// Retry-After when set.
net::awaitable<bool> send_error(ClientLink& link, RequestContext& ctx, const GatewayError& err);
/// Writes `events` as one HTTP chunk (after `prefix`, the response head on the first write; and,
/// when `last`, followed by the terminating chunk) in one gathered write.
net::awaitable<bool> write_chunk(ClientLink& link, RequestContext& ctx, const std::string& prefix,
                                 const std::string& events, bool last);
/// The event that ends a stream with an error, in the client's dialect.
std::string terminal_error_event(const GatewayError& e, Endpoint endpoint);
/// A 200 a request filter serves: a JSON body, or a whole event stream in one chunk.
net::awaitable<void> send_served(ClientLink& link, RequestContext& ctx, const ServedResponse& r);

}  // namespace sluice
