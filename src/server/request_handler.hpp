#pragma once

// What the downstream side calls to answer a request. server/ knows connections, framing,
// limits and the client's wire format; it does not know routing, providers or filters: the
// proxy (src/proxy/) implements this interface and main() hands it to the Server.

#include <memory>
#include <string_view>

#include <sluice/request_context.hpp>

#include "net/asio.hpp"

namespace sluice {

struct ClientLink;
class Worker;

class RequestHandler {
public:
    virtual ~RequestHandler() = default;
    /// Answers one API request whose head and body were read and whose endpoint is known
    /// (`model_id`: the id of GET /models/{id}). Writes through the client writer
    /// (server/client_writer.hpp); sets link->close when the connection must not be reused.
    /// An exception is a bug: the session answers 500 when nothing was sent yet.
    virtual net::awaitable<void> handle(std::shared_ptr<ClientLink> link, RequestContext& ctx,
                                        std::string_view model_id) const = 0;
    /// Starts the handler's background work on a worker, on its thread, before it serves
    /// (active health checks run on worker 0).
    virtual void start_worker(Worker& /*worker*/) const {}
};

}  // namespace sluice
