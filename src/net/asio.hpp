#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace sluice {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

/// Completion token for coroutines that handle errors as values: `auto [ec, n] = co_await ...`.
/// Boost 1.81 needs the inner token spelled out.
constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

}  // namespace sluice
