#pragma once

// A typed reader over nlohmann's DOM for documents sluice does not trust: clients' requests and
// providers' answers. nlohmann's own accessors throw on a wrong type (`value("role", "")` on
// `"role": 5`, `get<std::string>()` on a number); on the data plane a throw is a dropped
// connection, so translators read through this class instead.
//
// Accessors never throw and always return something safe to use (nullptr, nullopt). The first
// wrong-typed, missing or refused field is recorded with its JSON path
// (`messages[1].content[0].text`); the translator checks failed() where it matters and turns the
// record into a 400 naming the path (a client's request) or a 502 (a provider's answer).
//
//     json::Reader r;
//     const Json* messages = r.need_array(body, "messages");
//     for (std::size_t i = 0; messages != nullptr && i < messages->size(); ++i) {
//         auto in_messages = r.at("messages");
//         auto in_item = r.at(i);
//         const std::string* role = r.need_string((*messages)[i], "role");
//         ...
//     }
//     if (r.failed()) return r.client_error();
//
// Not thread-safe; one per document being read.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <sluice/error.hpp>

namespace sluice::json {

using Json = nlohmann::json;

enum class Type {
    string,
    integer,
    number,
    boolean,
    object,
    array
};

/// "a string", "an integer", ... for messages.
const char* type_phrase(Type t) noexcept;
/// What a value is, for messages: "a string", "an integer", "a number", "null", ...
const char* value_phrase(const Json& v) noexcept;
/// Whether `v` has type `t` (an integer is also a number).
bool has_type(const Json& v, Type t) noexcept;

/// A member of `obj`: nullptr when `obj` is not an object or the member is absent or null.
const Json* find(const Json& obj, std::string_view key) noexcept;
/// The same, for a value the caller may change in place.
Json* find_mut(Json& obj, std::string_view key) noexcept;
/// The value of a number (integer or not), or `fallback` when `v` is not a number.
double number_or(const Json& v, double fallback) noexcept;
/// The string member `key` of `obj`, or `fallback` when absent or not a string (for documents
/// already checked, or fields whose absence and wrong type mean the same).
std::string_view string_or(const Json& obj, std::string_view key, std::string_view fallback = {}) noexcept;

class Reader {
public:
    enum class Side {
        client,
        provider
    };
    explicit Reader(Side side = Side::client) : side_(side) { path_.reserve(8); }

    /// While alive, paths of recorded errors start with what at() pushed.
    class Scope {
    public:
        explicit Scope(Reader& r) noexcept : r_(r) {}
        ~Scope() { r_.path_.pop_back(); }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

    private:
        Reader& r_;
    };
    /// Descends into member `key` (which must outlive the scope: a literal or a DOM key).
    [[nodiscard]] Scope at(std::string_view key);
    /// Descends into array element `index`.
    [[nodiscard]] Scope at(std::size_t index);

    // Optional members: nullptr / nullopt when absent or null. A member present with another
    // type records the error and reads as absent.
    const std::string* string(const Json& obj, std::string_view key);
    std::optional<std::int64_t> integer(const Json& obj, std::string_view key);
    std::optional<double> number(const Json& obj, std::string_view key);
    std::optional<bool> boolean(const Json& obj, std::string_view key);
    const Json* object(const Json& obj, std::string_view key);
    const Json* array(const Json& obj, std::string_view key);

    // Required members: absent or null records "missing".
    const std::string* need_string(const Json& obj, std::string_view key);
    std::optional<std::int64_t> need_integer(const Json& obj, std::string_view key);
    const Json* need_object(const Json& obj, std::string_view key);
    const Json* need_array(const Json& obj, std::string_view key);

    /// Checks the value at the current path; records the error when it is not of type `t`.
    bool expect(const Json& v, Type t);
    /// Records "expected <expected>, got <what v is>" at the current path (+ key).
    void wrong_type(std::string_view key, std::string_view expected, const Json& v);

    /// Records an invalid value at the current path (+ key): "Invalid value for 'p': message".
    void fail(const std::string& message);
    void fail(std::string_view key, const std::string& message);
    /// Records a well-formed field the target cannot represent (400 unsupported_parameter).
    void unsupported(std::string_view key, const std::string& message);
    /// Records a member this document may not have (400 unknown_parameter).
    void unknown(std::string_view key);
    /// Records unknown() for the first member of `obj` not in `allowed`.
    void only(const Json& obj, std::initializer_list<std::string_view> allowed);
    /// Like fail() and unsupported(), at an explicit path (for checks made after the walk).
    void fail_at(std::string path, const std::string& message);
    void unsupported_at(std::string path, const std::string& message);

    bool failed() const noexcept { return failed_; }
    bool ok() const noexcept { return !failed_; }
    /// Of the first recorded error.
    const std::string& error_path() const noexcept { return error_path_; }
    const std::string& error_message() const noexcept { return error_message_; }
    const std::string& error_code() const noexcept { return error_code_; }

    /// The recorded error as the client's: 400 invalid_request_error, param = its path.
    GatewayError client_error() const;
    /// The recorded error as the provider's: 502 upstream_invalid_response.
    GatewayError provider_error(std::string_view provider) const;
    /// client_error() or provider_error() by the side the reader was made for.
    GatewayError error(std::string_view provider = {}) const;

    /// The current path with `key` appended ("messages[1].role").
    std::string path_with(std::string_view key) const;

private:
    struct Segment {
        std::string_view key;
        std::size_t index = 0;
        bool is_index = false;
    };
    void record(std::string_view key, std::string code, std::string message_tail);

    Side side_;
    std::vector<Segment> path_;
    bool failed_ = false;
    std::string error_path_;
    std::string error_message_;
    std::string error_code_;
};

}  // namespace sluice::json
