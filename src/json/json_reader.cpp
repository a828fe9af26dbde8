#include "json/json_reader.hpp"

#include <limits>

namespace sluice::json {

const char* type_phrase(Type t) noexcept {
    switch (t) {
        case Type::string: return "a string";
        case Type::integer: return "an integer";
        case Type::number: return "a number";
        case Type::boolean: return "a boolean";
        case Type::object: return "an object";
        case Type::array: return "an array";
    }
    return "a value";
}

const char* value_phrase(const Json& v) noexcept {
    switch (v.type()) {
        case Json::value_t::null: return "null";
        case Json::value_t::object: return "an object";
        case Json::value_t::array: return "an array";
        case Json::value_t::string: return "a string";
        case Json::value_t::boolean: return "a boolean";
        case Json::value_t::number_integer:
        case Json::value_t::number_unsigned: return "an integer";
        case Json::value_t::number_float: return "a number";
        case Json::value_t::binary:
        case Json::value_t::discarded: break;
    }
    return "an unknown value";
}

bool has_type(const Json& v, Type t) noexcept {
    switch (t) {
        case Type::string: return v.is_string();
        case Type::integer:
            return v.is_number_integer() &&
                   (!v.is_number_unsigned() ||
                    v.get_ref<const Json::number_unsigned_t&>() <=
                        static_cast<Json::number_unsigned_t>(std::numeric_limits<std::int64_t>::max()));
        case Type::number: return v.is_number();
        case Type::boolean: return v.is_boolean();
        case Type::object: return v.is_object();
        case Type::array: return v.is_array();
    }
    return false;
}

const Json* find(const Json& obj, std::string_view key) noexcept {
    if (!obj.is_object()) {
        return nullptr;
    }
    const auto& o = obj.get_ref<const Json::object_t&>();
    const auto it = o.find(key);
    if (it == o.end() || it->second.is_null()) {
        return nullptr;
    }
    return &it->second;
}

Json* find_mut(Json& obj, std::string_view key) noexcept {
    return const_cast<Json*>(find(obj, key));  // NOLINT(cppcoreguidelines-pro-type-const-cast): same object
}

double number_or(const Json& v, double fallback) noexcept {
    if (v.is_number_float()) {
        return v.get_ref<const Json::number_float_t&>();
    }
    if (v.is_number_unsigned()) {
        return static_cast<double>(v.get_ref<const Json::number_unsigned_t&>());
    }
    if (v.is_number_integer()) {
        return static_cast<double>(v.get_ref<const Json::number_integer_t&>());
    }
    return fallback;
}

std::string_view string_or(const Json& obj, std::string_view key, std::string_view fallback) noexcept {
    const Json* v = find(obj, key);
    if (v == nullptr || !v->is_string()) {
        return fallback;
    }
    return v->get_ref<const std::string&>();
}

Reader::Scope Reader::at(std::string_view key) {
    path_.push_back(Segment{key, 0, false});
    return Scope(*this);
}

Reader::Scope Reader::at(std::size_t index) {
    path_.push_back(Segment{{}, index, true});
    return Scope(*this);
}

std::string Reader::path_with(std::string_view key) const {
    std::string out;
    for (const Segment& s : path_) {
        if (s.is_index) {
            out += '[';
            out += std::to_string(s.index);
            out += ']';
        } else {
            if (!out.empty()) {
                out += '.';
            }
            out += s.key;
        }
    }
    if (!key.empty()) {
        if (!out.empty()) {
            out += '.';
        }
        out += key;
    }
    return out;
}

void Reader::record(std::string_view key, std::string code, std::string message) {
    if (failed_) {
        return;  // the first error is the one reported
    }
    failed_ = true;
    error_path_ = path_with(key);
    error_code_ = std::move(code);
    error_message_ = std::move(message);
}

void Reader::wrong_type(std::string_view key, std::string_view expected, const Json& v) {
    if (failed_) {
        return;
    }
    const std::string path = path_with(key);
    std::string msg = "Invalid type for '" + path + "': expected ";
    msg += expected;
    msg += ", but got ";
    msg += value_phrase(v);
    msg += " instead.";
    record(key, "invalid_type", std::move(msg));
}

bool Reader::expect(const Json& v, Type t) {
    if (has_type(v, t)) {
        return true;
    }
    wrong_type({}, type_phrase(t), v);
    return false;
}

namespace {
const Json* typed(Reader& r, const Json& obj, std::string_view key, Type t) {
    const Json* v = find(obj, key);
    if (v == nullptr) {
        return nullptr;
    }
    if (!has_type(*v, t)) {
        r.wrong_type(key, type_phrase(t), *v);
        return nullptr;
    }
    return v;
}
}  // namespace

const std::string* Reader::string(const Json& obj, std::string_view key) {
    const Json* v = typed(*this, obj, key, Type::string);
    return v == nullptr ? nullptr : &v->get_ref<const std::string&>();
}

std::optional<std::int64_t> Reader::integer(const Json& obj, std::string_view key) {
    const Json* v = typed(*this, obj, key, Type::integer);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (v->is_number_unsigned()) {
        return static_cast<std::int64_t>(v->get_ref<const Json::number_unsigned_t&>());
    }
    return v->get_ref<const Json::number_integer_t&>();
}

std::optional<double> Reader::number(const Json& obj, std::string_view key) {
    const Json* v = typed(*this, obj, key, Type::number);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (v->is_number_float()) {
        return v->get_ref<const Json::number_float_t&>();
    }
    if (v->is_number_unsigned()) {
        return static_cast<double>(v->get_ref<const Json::number_unsigned_t&>());
    }
    return static_cast<double>(v->get_ref<const Json::number_integer_t&>());
}

std::optional<bool> Reader::boolean(const Json& obj, std::string_view key) {
    const Json* v = typed(*this, obj, key, Type::boolean);
    return v == nullptr ? std::nullopt : std::optional<bool>(v->get_ref<const Json::boolean_t&>());
}

const Json* Reader::object(const Json& obj, std::string_view key) {
    return typed(*this, obj, key, Type::object);
}

const Json* Reader::array(const Json& obj, std::string_view key) {
    return typed(*this, obj, key, Type::array);
}

namespace {
bool present(const Json& obj, std::string_view key) {
    return find(obj, key) != nullptr;
}
}  // namespace

const std::string* Reader::need_string(const Json& obj, std::string_view key) {
    if (!present(obj, key)) {
        record(key, "missing_required_parameter", "Missing required parameter: '" + path_with(key) + "'.");
        return nullptr;
    }
    return string(obj, key);
}

std::optional<std::int64_t> Reader::need_integer(const Json& obj, std::string_view key) {
    if (!present(obj, key)) {
        record(key, "missing_required_parameter", "Missing required parameter: '" + path_with(key) + "'.");
        return std::nullopt;
    }
    return integer(obj, key);
}

const Json* Reader::need_object(const Json& obj, std::string_view key) {
    if (!present(obj, key)) {
        record(key, "missing_required_parameter", "Missing required parameter: '" + path_with(key) + "'.");
        return nullptr;
    }
    return object(obj, key);
}

const Json* Reader::need_array(const Json& obj, std::string_view key) {
    if (!present(obj, key)) {
        record(key, "missing_required_parameter", "Missing required parameter: '" + path_with(key) + "'.");
        return nullptr;
    }
    return array(obj, key);
}

void Reader::fail(const std::string& message) {
    fail({}, message);
}

void Reader::fail(std::string_view key, const std::string& message) {
    if (failed_) {
        return;
    }
    record(key, "invalid_value", "Invalid value for '" + path_with(key) + "': " + message);
}

void Reader::unsupported(std::string_view key, const std::string& message) {
    if (failed_) {
        return;
    }
    std::string text = "'";  // not "'" + string: g++ 12 warns falsely (-Wrestrict)
    text += path_with(key);
    text += "': ";
    text += message;
    record(key, "unsupported_parameter", std::move(text));
}

void Reader::unknown(std::string_view key) {
    if (failed_) {
        return;
    }
    record(key, "unknown_parameter", "Unrecognized request argument supplied: '" + path_with(key) + "'.");
}

void Reader::only(const Json& obj, std::initializer_list<std::string_view> allowed) {
    if (failed_ || !obj.is_object()) {
        return;
    }
    for (const auto& item : obj.items()) {
        bool known = false;
        for (const std::string_view a : allowed) {
            if (item.key() == a) {
                known = true;
                break;
            }
        }
        if (!known) {
            unknown(item.key());
            return;
        }
    }
}

void Reader::fail_at(std::string path, const std::string& message) {
    if (failed_) {
        return;
    }
    failed_ = true;
    error_message_ = "Invalid value for '" + path + "': " + message;
    error_path_ = std::move(path);
    error_code_ = "invalid_value";
}

void Reader::unsupported_at(std::string path, const std::string& message) {
    if (failed_) {
        return;
    }
    failed_ = true;
    error_message_ = "'" + path + "': " + message;
    error_path_ = std::move(path);
    error_code_ = "unsupported_parameter";
}

GatewayError Reader::client_error() const {
    GatewayError e = GatewayError::bad_request(failed_ ? error_message_ : "Invalid request.",
                                               failed_ ? error_code_ : "invalid_request", error_path_);
    return e;
}

GatewayError Reader::provider_error(std::string_view provider) const {
    std::string msg = "Provider '";
    msg += provider;
    msg += "' sent an answer sluice cannot read: ";
    msg += failed_ ? error_message_ : "invalid document";
    return GatewayError::upstream_error(std::move(msg), "upstream_invalid_response");
}

GatewayError Reader::error(std::string_view provider) const {
    return side_ == Side::client ? client_error() : provider_error(provider);
}

}  // namespace sluice::json
