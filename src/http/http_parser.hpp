#pragma once

// A strict HTTP/1.1 message-head parser and chunked-body decoder, used for requests from clients
// and for responses from providers. Beast 1.81's parser predates the framing hardening of
// Boost 1.90+ (CL+TE, odd Transfer-Encoding, bare LF, obs-fold), so sluice parses heads itself
// and rejects every ambiguous framing (RELIABILITY.md A1-A5, E6) instead of guessing.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::http1 {

struct HeaderField {
    std::string_view name;
    std::string_view value;  ///< OWS trimmed
};

/// Why a head or body was rejected. `status` is what to answer a client with (400, 413, 414, 417,
/// 431, 501); for responses from upstream every error maps to 502.
struct ParseError {
    int status = 400;
    std::string code;
    std::string message;
};

enum class ParseStatus {
    incomplete,
    done,
    error
};

struct MessageHead {
    std::string raw;  ///< owns the bytes every string_view below points into
    // request
    std::string_view method;
    std::string_view target;
    // response
    int status = 0;
    std::string_view reason;
    int version_minor = 1;  ///< HTTP/1.<n>, n is 0 or 1
    std::vector<HeaderField> headers;
    std::optional<std::uint64_t> content_length;
    bool chunked = false;
    bool keep_alive = true;
    bool expect_continue = false;

    /// First value of the named header (case-insensitive), empty when absent.
    std::string_view find(std::string_view name) const noexcept;
    bool has(std::string_view name) const noexcept;
};

struct HeadLimits {
    std::size_t max_head_bytes = 16384;
    std::size_t max_start_line = 8192;
    std::size_t max_headers = 100;
};

/// How far a head arriving in pieces has been scanned. Passed back on every call for the same
/// growing buffer (bytes only appended), it makes a head sent one byte per packet cost each byte
/// once instead of a rescan from byte 0 per read. Reset it (`= {}`) when the buffer's front is
/// erased, i.e. for the next head.
struct HeadScan {
    std::size_t scanned = 0;                         ///< bytes already checked
    std::size_t first_eol = std::string_view::npos;  ///< offset of the start line's CRLF
    std::size_t end = std::string_view::npos;        ///< length of the head once its end is seen
    std::uint64_t work = 0;                          ///< bytes examined in total (for tests)
};

/// Looks for a complete head at the start of `buf`. On `done`, `out` holds the parsed head and
/// `consumed` its length including the blank line. `incomplete` means read more bytes (unless
/// the buffer already exceeds the limits, which is reported as an error). With `scan`, the search
/// resumes where the previous call for the same buffer stopped.
ParseStatus parse_request_head(std::string_view buf, const HeadLimits& limits, MessageHead& out,
                               std::size_t& consumed, ParseError& err, HeadScan* scan = nullptr);
ParseStatus parse_response_head(std::string_view buf, const HeadLimits& limits, MessageHead& out,
                                std::size_t& consumed, ParseError& err, HeadScan* scan = nullptr);

/// Incremental decoder for `Transfer-Encoding: chunked` bodies. Feed bytes split anywhere; the
/// payload is appended to `out`. Strict per RFC 9112 §7.1: hex sizes without sign, prefix or
/// whitespace, CRLF only, overflow checked, chunk extensions and trailers capped at 8 KiB.
class ChunkedDecoder {
public:
    /// Consumes a prefix of `in`; returns how many bytes were used. Stops at the end of the body.
    std::size_t feed(std::string_view in, std::string& out);
    bool done() const noexcept { return state_ == State::done; }
    bool failed() const noexcept { return state_ == State::failed; }
    const ParseError& error() const noexcept { return error_; }
    /// Bytes of payload still expected in the current chunk (0 between chunks).
    std::uint64_t remaining_in_chunk() const noexcept { return remaining_; }

private:
    enum class State {
        size,
        ext_ws,
        ext,
        size_lf,
        data,
        data_cr,
        data_lf,
        trailer,
        trailer_lf,
        done,
        failed
    };
    std::size_t fail(std::string message);

    State state_ = State::size;
    std::uint64_t remaining_ = 0;
    unsigned digits_ = 0;
    std::size_t line_bytes_ = 0;
    std::size_t trailer_bytes_ = 0;
    bool trailer_line_empty_ = true;
    bool last_chunk_ = false;
    ParseError error_;
};

}  // namespace sluice::http1
