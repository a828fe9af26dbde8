#include "gateway.hpp"

#include "log/log.hpp"
#include "proxy/proxy.hpp"

namespace sluice::test {

Gateway::Gateway(const std::string& yaml, int threads) : Gateway(yaml, {}, threads) {}

Gateway::Gateway(const std::string& yaml, std::vector<std::shared_ptr<const Filter>> extra, int threads) {
    static const bool logging = [] {
        LogConfig lc;
        lc.level = "warn";
        log::setup(lc);
        return true;
    }();
    (void)logging;
    GatewayConfig cfg = load_config_text(yaml);
    cfg.server.listen = "127.0.0.1:0";
    cfg.server.threads = threads;
    threads_ = threads;
    server_ = std::make_unique<Server>(Runtime::build(std::move(cfg), std::move(extra)),
                                       proxy::make_request_handler());
    server_->start();
}

void Gateway::publish(const std::string& yaml) {
    GatewayConfig cfg = load_config_text(yaml);
    cfg.server.listen = "127.0.0.1:0";
    cfg.server.threads = threads_;
    server_->publish(Runtime::build(std::move(cfg)));
}

Gateway::~Gateway() {
    server_->stop_now();
    server_->wait();
}

}  // namespace sluice::test
