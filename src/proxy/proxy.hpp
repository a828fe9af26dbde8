#pragma once

// The proxy: the request handler the server calls for every API request. It runs the filter
// chain, then serves the model list or routes the request: the router plans the attempts, each
// attempt runs on its target, and the router decides after each failure.

#include <memory>

#include "server/request_handler.hpp"

namespace sluice::proxy {

std::shared_ptr<const RequestHandler> make_request_handler();

}  // namespace sluice::proxy
