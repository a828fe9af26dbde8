#pragma once

// Reading a provider's error answer in unit tests: headers as a small list, and the error alone
// for tests that only look at the body's mapping.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <sluice/provider.hpp>

#include "util/strings.hpp"

namespace sluice::test {

class TestHeaders final : public HeaderView {
public:
    TestHeaders(std::initializer_list<std::pair<std::string, std::string>> fields) : fields_(fields) {}
    std::string_view find(std::string_view name) const noexcept override {
        for (const auto& [k, v] : fields_) {
            if (iequals(k, name)) {
                return v;
            }
        }
        return {};
    }

private:
    std::vector<std::pair<std::string, std::string>> fields_;
};

/// The error `p` answers with for an error body with no headers.
inline GatewayError body_err(const Provider& p, int status, std::string_view body) {
    return p.translate_error(status, NoHeaders(), body, 0).error;
}

}  // namespace sluice::test
