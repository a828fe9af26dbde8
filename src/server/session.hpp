#pragma once

// Internals shared by the downstream session (session.cpp) and the forwarder (forwarder.cpp).

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/http_parser.hpp"
#include "server/server.hpp"

#include <sluice/filter.hpp>

namespace sluice {

/// Response headers beyond the fixed ones.
using ExtraHeaders = std::vector<std::pair<std::string_view, std::string>>;

/// Adds x-sluice-provider, x-sluice-model, x-sluice-attempts, x-sluice-overhead-us (time inside
/// sluice, upstream time excluded) and server-timing, once a request reached a provider.
void add_transparency_headers(const RequestContext& ctx, ExtraHeaders& extra);

/// Builds a response head. `content_length` nullopt = chunked.
std::string response_head(int status, std::string_view content_type,
                          std::optional<std::size_t> content_length, std::string_view request_id,
                          bool close, const ExtraHeaders& extra = {},
                          const ResponseHeaders* added = nullptr);
/// The head of a request's answer: `extra`, the transparency headers and, once the request
/// reached the filters, what their response-head hooks add.
std::string answer_head(const RequestContext& ctx, int status, std::string_view content_type,
                        std::optional<std::size_t> content_length, bool close, ExtraHeaders extra);
/// Writes `events` as one HTTP chunk (after `prefix`, the response head on the first write; and,
/// when `last`, followed by the terminating chunk) in one contiguous buffer.
net::awaitable<bool> write_chunk(ClientLink& link, RequestContext& ctx, const std::string& prefix,
                                 const std::string& events, bool last, std::string& frame);

/// Writes buffers to the client under the write timeout; counts bytes and the first byte.
/// false when the client is gone or too slow (the connection must then be closed).
net::awaitable<bool> write_client(ClientLink& link, RequestContext& ctx,
                                  std::span<const net::const_buffer> buffers);

/// Sends a complete response with a body.
net::awaitable<bool> send_body(ClientLink& link, RequestContext& ctx, int status,
                               std::string_view content_type, const std::string& body, bool close,
                               const ExtraHeaders& extra = {});
/// Sends an OpenAI-shaped error (Retry-After when set).
net::awaitable<bool> send_error(ClientLink& link, RequestContext& ctx, const GatewayError& err,
                                bool close);

/// Runs the upstream part of an API request (after the pipeline let it through) and writes the
/// answer. Sets `close` when the client connection must not be reused.
net::awaitable<void> forward(std::shared_ptr<ClientLink> link, RequestContext& ctx, bool& close);

/// One active health check: the provider's model list answers 2xx within `timeout`. `rt` is
/// the snapshot `provider` belongs to (it holds the provider's TLS context).
net::awaitable<bool> check_provider(Worker& worker, const Runtime& rt, const Provider& provider,
                                    std::chrono::milliseconds timeout);

/// Model ids a provider offers (cached for a minute per runtime), fetched with its key, on the
/// snapshot `rt` that `provider` belongs to.
net::awaitable<std::vector<std::string>> provider_models(Worker& worker, const Runtime& rt,
                                                         const Provider& provider,
                                                         std::string request_id);

}  // namespace sluice
