#pragma once

#include <memory>
#include <string>
#include <vector>

#include <sluice/filter.hpp>

#include "runtime/runtime.hpp"
#include "server/server.hpp"

namespace sluice::test {

/// sluice running in-process on 127.0.0.1:0 with the given YAML (server.listen is forced).
class Gateway {
public:
    explicit Gateway(const std::string& yaml, int threads = 2);
    /// With `extra` filters after the configured ones, before the access log (test filters).
    Gateway(const std::string& yaml, std::vector<std::shared_ptr<const Filter>> extra, int threads = 2);
    ~Gateway();
    std::uint16_t port() const { return server_->port(); }
    Server& server() { return *server_; }
    /// Publishes a runtime built from `yaml` (as a config reload will): requests that start
    /// after the workers took it use it.
    void publish(const std::string& yaml);

private:
    int threads_ = 2;
    std::unique_ptr<Server> server_;
};

}  // namespace sluice::test
