#pragma once

#include <memory>
#include <vector>

#include <sluice/clock.hpp>
#include <sluice/config.hpp>
#include <sluice/filter.hpp>

namespace sluice {

/// Builds a runtime's filters from its config, in chain order, by the factory table in
/// registry.cpp. `extra` filters (tests; embedders) go after the configured ones and before
/// the access log, which is always last.
std::vector<std::shared_ptr<const Filter>> build_filters(const GatewayConfig& cfg, const Services& services,
                                                         std::vector<std::shared_ptr<const Filter>> extra);

}  // namespace sluice
