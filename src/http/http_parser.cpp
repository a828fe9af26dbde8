#include "http/http_parser.hpp"

#include <array>
#include <cstring>

#include "util/bytes.hpp"
#include "util/strings.hpp"

namespace sluice::http1 {

namespace {

constexpr std::size_t kMaxChunkLine = 8192;
constexpr std::size_t kMaxTrailers = 8192;

using bytes::is_tchar;

bool is_field_vchar(unsigned char c) noexcept {
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

ParseStatus fail(ParseError& err, int status, const char* code, std::string message) {
    err.status = status;
    err.code = code;
    err.message = std::move(message);
    return ParseStatus::error;
}

/// Scans on from where the last call stopped for the end of the head ("\r\n\r\n"), noting the
/// end of the start line on the way. Rejects bare LF and bare CR as soon as they appear. Each byte
/// is looked at once however the head is split across reads: every check looks back, never ahead,
/// so a CR at the end of the buffer is judged when the byte after it arrives.
void scan_head(std::string_view buf, HeadScan& scan, bool& bare) {
    bare = false;
    if (scan.scanned > buf.size()) {
        scan = HeadScan{};  // a different buffer: start over rather than index past its end
    }
    std::size_t i = scan.scanned;
    while (i < buf.size()) {
        const char c = buf[i];
        const char prev = i > 0 ? buf[i - 1] : '\0';
        if (prev == '\r' && c != '\n') {
            bare = true;  // bare CR is just as ambiguous as bare LF
            scan.scanned = i;
            return;
        }
        if (c != '\r' && c != '\n') {
            // Plain bytes up to the next CR or LF, 16 at a time.
            const std::size_t next = bytes::find_cr_or_lf(buf, i + 1);
            scan.work += next - i;
            i = next;
            continue;
        }
        ++scan.work;
        if (c == '\n') {
            if (prev != '\r') {
                bare = true;
                scan.scanned = i;
                return;
            }
            if (scan.first_eol == std::string_view::npos) {
                scan.first_eol = i - 1;
            }
            if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
                scan.end = i + 1;
                scan.scanned = i + 1;
                return;
            }
        }
        ++i;
    }
    scan.scanned = buf.size();
}

bool parse_version(std::string_view v, int& minor) {
    if (v == "HTTP/1.1") {
        minor = 1;
        return true;
    }
    if (v == "HTTP/1.0") {
        minor = 0;
        return true;
    }
    return false;
}

/// Header-name bytes of a request: tokens without '_' (underscore names collide with dash names
/// in CGI-style gateways, Envoy's headers_with_underscores_action: REJECT_REQUEST). Responses
/// may use them.
constexpr std::array<bool, 256> kRequestNameByte = [] {
    std::array<bool, 256> t = bytes::kTchar;
    t[static_cast<unsigned char>('_')] = false;
    return t;
}();

/// Why the header name starting at `from` stops at `stop` (not a colon).
ParseStatus bad_name(std::string_view lines, std::size_t from, std::size_t stop, bool is_request,
                     ParseError& err) {
    const int bad = is_request ? 400 : 502;
    const std::size_t eol = lines.find('\r', from);
    if (lines.substr(from, eol - from).find(':') == std::string_view::npos) {
        return fail(err, bad, "invalid_header", "header line without a colon");
    }
    const char c = lines[stop];
    if (c == '_') {
        return fail(err, bad, "invalid_header", "underscores in header names are not accepted");
    }
    return fail(err, bad, "invalid_header",
                c == ' ' || c == '\t' ? "whitespace between a header name and its colon"
                                      : "invalid character in a header name");
}

/// Parses the header lines in `lines`: each ends CRLF and the blank line ends them (scan_head has
/// checked that every CR is followed by LF and every LF preceded by CR). One pass per line: the
/// name up to its colon through a table, the value up to its CR 16 bytes at a time.
ParseStatus parse_fields(std::string_view lines, bool is_request, const HeadLimits& limits, MessageHead& out,
                         ParseError& err) {
    const int bad = is_request ? 400 : 502;
    const std::array<bool, 256>& name_byte = is_request ? kRequestNameByte : bytes::kTchar;
    const std::size_t n = lines.size();
    std::size_t pos = 0;
    while (pos < n && lines[pos] != '\r') {
        if (lines[pos] == ' ' || lines[pos] == '\t') {
            return fail(err, bad, "invalid_header", "obsolete line folding is not accepted");
        }
        std::size_t colon = pos;
        while (colon < n && name_byte[static_cast<unsigned char>(lines[colon])]) {
            ++colon;
        }
        if (colon == n || lines[colon] != ':') {
            return bad_name(lines, pos, colon, is_request, err);
        }
        if (colon == pos) {
            return fail(err, bad, "invalid_header", "empty header name");
        }
        const std::size_t end = bytes::find_invalid_field_byte(lines, colon + 1);
        if (end == n || lines[end] != '\r') {
            return fail(err, bad, "invalid_header", "control character in a header value");
        }
        if (out.headers.size() >= limits.max_headers) {
            return fail(err, is_request ? 431 : 502, "headers_too_large",
                        "too many header fields (limit " + std::to_string(limits.max_headers) + ")");
        }
        out.headers.push_back(
            {lines.substr(pos, colon - pos), trim_ows(lines.substr(colon + 1, end - colon - 1))});
        pos = end + 2;
    }
    return ParseStatus::done;
}

bool parse_content_length(std::string_view v, std::uint64_t& out) {
    if (v.empty() || v.size() > 18) {
        return false;
    }
    std::uint64_t n = 0;
    for (const char c : v) {
        if (c < '0' || c > '9') {
            return false;
        }
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    out = n;
    return true;
}

bool header_has_token(std::string_view value, std::string_view token) {
    std::size_t pos = 0;
    while (pos <= value.size()) {
        auto comma = value.find(',', pos);
        if (comma == std::string_view::npos) {
            comma = value.size();
        }
        if (iequals(trim_ows(value.substr(pos, comma - pos)), token)) {
            return true;
        }
        pos = comma + 1;
    }
    return false;
}

/// Framing and connection semantics shared by requests and responses.
ParseStatus resolve_framing(bool is_request, MessageHead& out, ParseError& err) {
    const int bad = is_request ? 400 : 502;
    bool seen_te = false;
    bool seen_cl = false;
    bool seen_host = false;
    bool close = out.version_minor == 0;
    for (const auto& h : out.headers) {
        if (iequals(h.name, "content-length")) {
            if (seen_cl) {
                return fail(err, bad, "invalid_framing", "more than one Content-Length header");
            }
            seen_cl = true;
            std::uint64_t n = 0;
            if (!parse_content_length(h.value, n)) {
                return fail(err, bad, "invalid_framing", "invalid Content-Length value");
            }
            out.content_length = n;
        } else if (iequals(h.name, "transfer-encoding")) {
            if (seen_te) {
                return fail(err, bad, "invalid_framing", "more than one Transfer-Encoding header");
            }
            seen_te = true;
            if (out.version_minor == 0) {
                return fail(err, bad, "invalid_framing", "Transfer-Encoding in an HTTP/1.0 message");
            }
            if (!iequals(h.value, "chunked")) {
                return fail(err, is_request ? 400 : 502, "invalid_framing",
                            "unsupported Transfer-Encoding (only 'chunked' is accepted)");
            }
            out.chunked = true;
        } else if (iequals(h.name, "connection")) {
            if (header_has_token(h.value, "close")) {
                close = true;
            } else if (header_has_token(h.value, "keep-alive")) {
                close = false;
            }
        } else if (is_request && iequals(h.name, "host")) {
            if (seen_host) {
                return fail(err, 400, "invalid_header", "more than one Host header");
            }
            seen_host = true;
        } else if (is_request && iequals(h.name, "expect")) {
            if (!iequals(h.value, "100-continue")) {
                return fail(err, 417, "expectation_failed", "only 'Expect: 100-continue' is supported");
            }
            out.expect_continue = out.version_minor == 1;
        }
    }
    if (seen_te && seen_cl) {
        return fail(err, bad, "invalid_framing", "both Content-Length and Transfer-Encoding are present");
    }
    if (is_request && out.version_minor == 1 && !seen_host) {
        return fail(err, 400, "invalid_header", "missing Host header");
    }
    out.keep_alive = !close;
    return ParseStatus::done;
}

constexpr std::size_t kTypicalHeaders = 16;

ParseStatus head_common(std::string_view buf, const HeadLimits& limits, bool is_request, MessageHead& out,
                        std::size_t& consumed, ParseError& err, HeadScan* resume) {
    const int bad = is_request ? 400 : 502;
    HeadScan fresh;
    HeadScan& scan = resume != nullptr ? *resume : fresh;
    if (scan.end != std::string_view::npos && scan.end > buf.size()) {
        scan = HeadScan{};
    }
    bool bare = false;
    if (scan.end == std::string_view::npos) {
        scan_head(buf, scan, bare);
    }
    if (bare) {
        return fail(err, bad, "invalid_framing", "bare CR or LF in the message head");
    }
    const std::size_t end = scan.end;
    if (end == std::string_view::npos) {
        const std::size_t line_len = scan.first_eol == std::string_view::npos ? buf.size() : scan.first_eol;
        if (line_len > limits.max_start_line) {
            return is_request ? fail(err, 414, "uri_too_long", "the request line is too long")
                              : fail(err, 502, "invalid_response", "the status line is too long");
        }
        if (buf.size() > limits.max_head_bytes) {
            return fail(err, is_request ? 431 : 502, "headers_too_large",
                        "the header section exceeds " + std::to_string(limits.max_head_bytes) + " bytes");
        }
        return ParseStatus::incomplete;
    }
    if (scan.first_eol > limits.max_start_line) {
        return is_request ? fail(err, 414, "uri_too_long", "the request line is too long")
                          : fail(err, 502, "invalid_response", "the status line is too long");
    }
    if (end > limits.max_head_bytes + 4) {
        return fail(err, is_request ? 431 : 502, "headers_too_large",
                    "the header section exceeds " + std::to_string(limits.max_head_bytes) + " bytes");
    }
    // Reset, keeping the buffers of a head that is parsed into again.
    std::string raw_buffer = std::move(out.raw);
    std::vector<HeaderField> field_buffer = std::move(out.headers);
    out = MessageHead{};
    out.raw = std::move(raw_buffer);
    out.raw.assign(buf.data(), end);
    out.headers = std::move(field_buffer);
    out.headers.clear();
    if (out.headers.capacity() < kTypicalHeaders) {
        out.headers.reserve(kTypicalHeaders);  // one allocation, not five as the list grows
    }
    const std::string_view raw = out.raw;
    const auto eol = raw.find("\r\n");
    const auto start = raw.substr(0, eol);
    if (start.size() > limits.max_start_line) {
        return is_request ? fail(err, 414, "uri_too_long", "the request line is too long")
                          : fail(err, 502, "invalid_response", "the status line is too long");
    }
    if (is_request) {
        const auto sp1 = start.find(' ');
        const auto sp2 = sp1 == std::string_view::npos ? sp1 : start.find(' ', sp1 + 1);
        if (sp1 == std::string_view::npos || sp2 == std::string_view::npos ||
            start.find(' ', sp2 + 1) != std::string_view::npos) {
            return fail(err, 400, "invalid_request_line", "malformed request line");
        }
        out.method = start.substr(0, sp1);
        out.target = start.substr(sp1 + 1, sp2 - sp1 - 1);
        if (out.method.empty() || out.target.empty()) {
            return fail(err, 400, "invalid_request_line", "malformed request line");
        }
        for (const char c : out.method) {
            if (!is_tchar(static_cast<unsigned char>(c))) {
                return fail(err, 400, "invalid_request_line", "invalid method");
            }
        }
        for (const char c : out.target) {
            const auto u = static_cast<unsigned char>(c);
            if (u <= 0x20 || u >= 0x7f) {
                return fail(err, 400, "invalid_request_line", "invalid character in the target");
            }
        }
        if (!parse_version(start.substr(sp2 + 1), out.version_minor)) {
            return fail(err, start.substr(sp2 + 1).rfind("HTTP/", 0) == 0 ? 505 : 400, "unsupported_version",
                        "only HTTP/1.0 and HTTP/1.1 are supported");
        }
    } else {
        // HTTP/1.1 200 OK   (reason may be empty)
        if (start.size() < 12 || !parse_version(start.substr(0, 8), out.version_minor) || start[8] != ' ') {
            return fail(err, 502, "invalid_response", "malformed status line");
        }
        int status = 0;
        for (std::size_t i = 9; i < 12; ++i) {
            if (start[i] < '0' || start[i] > '9') {
                return fail(err, 502, "invalid_response", "malformed status code");
            }
            status = status * 10 + (start[i] - '0');
        }
        if (status < 100 || (start.size() > 12 && start[12] != ' ')) {
            return fail(err, 502, "invalid_response", "malformed status line");
        }
        out.status = status;
        out.reason = start.size() > 13 ? start.substr(13) : std::string_view{};
        for (const char c : out.reason) {
            if (!is_field_vchar(static_cast<unsigned char>(c))) {
                return fail(err, 502, "invalid_response", "control character in the reason phrase");
            }
        }
    }
    const auto fields = raw.substr(eol + 2);
    if (parse_fields(fields, is_request, limits, out, err) != ParseStatus::done) {
        return ParseStatus::error;
    }
    if (resolve_framing(is_request, out, err) != ParseStatus::done) {
        return ParseStatus::error;
    }
    consumed = end;
    return ParseStatus::done;
}

}  // namespace

std::string_view MessageHead::find(std::string_view name) const noexcept {
    for (const auto& h : headers) {
        if (iequals(h.name, name)) {
            return h.value;
        }
    }
    return {};
}

bool MessageHead::has(std::string_view name) const noexcept {
    for (const auto& h : headers) {
        if (iequals(h.name, name)) {
            return true;
        }
    }
    return false;
}

ParseStatus parse_request_head(std::string_view buf, const HeadLimits& limits, MessageHead& out,
                               std::size_t& consumed, ParseError& err, HeadScan* scan) {
    return head_common(buf, limits, true, out, consumed, err, scan);
}

ParseStatus parse_response_head(std::string_view buf, const HeadLimits& limits, MessageHead& out,
                                std::size_t& consumed, ParseError& err, HeadScan* scan) {
    return head_common(buf, limits, false, out, consumed, err, scan);
}

std::size_t ChunkedDecoder::fail(std::string message) {
    state_ = State::failed;
    error_.status = 400;
    error_.code = "invalid_chunked_body";
    error_.message = std::move(message);
    return 0;
}

std::size_t ChunkedDecoder::feed(std::string_view in, std::string& out) {
    std::size_t i = 0;
    while (i < in.size()) {
        const char c = in[i];
        switch (state_) {
            case State::size: {
                int digit = -1;
                if (c >= '0' && c <= '9') {
                    digit = c - '0';
                } else if (c >= 'a' && c <= 'f') {
                    digit = c - 'a' + 10;
                } else if (c >= 'A' && c <= 'F') {
                    digit = c - 'A' + 10;
                }
                if (digit >= 0) {
                    if (++digits_ > 15) {
                        return fail("chunk size too large");
                    }
                    remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(digit);
                    ++i;
                    break;
                }
                if (digits_ == 0) {
                    return fail("invalid chunk size");
                }
                if (c == ';') {
                    state_ = State::ext;
                    line_bytes_ = 0;
                    ++i;
                    break;
                }
                if (c == ' ' || c == '\t') {
                    state_ = State::ext_ws;
                    line_bytes_ = 0;
                    ++i;
                    break;
                }
                if (c == '\r') {
                    state_ = State::size_lf;
                    ++i;
                    break;
                }
                return fail("invalid chunk size");
            }
            case State::ext_ws:
                // RFC 9112 allows whitespace (BWS) after the size only before a ';'.
                if (c == ';') {
                    state_ = State::ext;
                } else if (c != ' ' && c != '\t') {
                    return fail("invalid chunk size");
                } else if (++line_bytes_ > kMaxChunkLine) {
                    return fail("chunk extension too long");
                }
                ++i;
                break;
            case State::ext:
                // Extensions are ignored but bounded; whitespace may only precede ';'.
                if (c == '\r') {
                    state_ = State::size_lf;
                } else if (c == '\n' || (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
                    return fail("invalid character in a chunk extension");
                } else if (++line_bytes_ > kMaxChunkLine) {
                    return fail("chunk extension too long");
                }
                ++i;
                break;
            case State::size_lf:
                if (c != '\n') {
                    return fail("chunk size line not ended by CRLF");
                }
                ++i;
                digits_ = 0;
                if (remaining_ == 0) {
                    last_chunk_ = true;
                    state_ = State::trailer;
                    trailer_line_empty_ = true;
                } else {
                    state_ = State::data;
                }
                break;
            case State::data: {
                const auto take =
                    static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, in.size() - i));
                out.append(in.data() + i, take);
                remaining_ -= take;
                i += take;
                if (remaining_ == 0) {
                    state_ = State::data_cr;
                }
                break;
            }
            case State::data_cr:
                if (c != '\r') {
                    return fail("chunk data not followed by CRLF");
                }
                state_ = State::data_lf;
                ++i;
                break;
            case State::data_lf:
                if (c != '\n') {
                    return fail("chunk data not followed by CRLF");
                }
                state_ = State::size;
                ++i;
                break;
            case State::trailer:
                if (c == '\r') {
                    state_ = State::trailer_lf;
                } else if (c == '\n' || (static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
                    return fail("invalid character in a trailer");
                } else {
                    trailer_line_empty_ = false;
                    if (++trailer_bytes_ > kMaxTrailers) {
                        return fail("trailers too long");
                    }
                }
                ++i;
                break;
            case State::trailer_lf:
                if (c != '\n') {
                    return fail("trailer line not ended by CRLF");
                }
                ++i;
                if (trailer_line_empty_) {
                    state_ = State::done;
                    return i;
                }
                trailer_line_empty_ = true;
                state_ = State::trailer;
                break;
            case State::done:
            case State::failed: return i;
        }
    }
    return i;
}

}  // namespace sluice::http1
