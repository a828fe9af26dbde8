#include "json/json_dom.hpp"

namespace sluice::json {

bool parse_untrusted(std::string_view text, Json& out, ScanError* error, const ScanLimits& limits) {
    ScanError local;
    ScanError& err = error != nullptr ? *error : local;
    out = Json(Json::value_t::discarded);
    if (!scan(text, nullptr, err, limits)) {
        return false;
    }
    // The scanner accepted it, so nlohmann will too; allow_exceptions=false all the same.
    out = Json::parse(text, nullptr, false);
    if (out.is_discarded()) {
        err.offset = 0;
        err.message = "invalid JSON";
        return false;
    }
    return true;
}

void append_text(std::string& out, const Json& j) {
    // nlohmann's serializer writing straight into `out`, replacing invalid UTF-8 instead of
    // throwing type_error.316.
    nlohmann::detail::serializer<Json> s(nlohmann::detail::output_adapter<char, std::string>(out), ' ',
                                         Json::error_handler_t::replace);
    s.dump(j, false, false, 0);
}

std::string to_text(const Json& j) {
    std::string out;
    append_text(out, j);
    return out;
}

}  // namespace sluice::json
