#pragma once

// Server-sent events framing, per the WHATWG "event stream" rules: lines end in CRLF, LF or CR
// (a CR at the end of one read may be followed by the LF in the next), `data:` lines of one event
// are joined with LF, `:` lines are comments, a blank line dispatches the event. Bytes may be
// split anywhere. Lines are capped so a peer cannot make sluice buffer without bound.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::sse {

struct Event {
    std::string event;    ///< `event:` field, empty = "message"
    std::string data;     ///< `data:` lines joined by '\n'
    std::string id;
    bool has_data = false;
    bool comment_only = false;  ///< a block made only of comment lines (e.g. ": keep-alive")
    std::string comment;        ///< text of the last comment line of a comment-only block
};

class Decoder {
public:
    explicit Decoder(std::size_t max_line_bytes = 1024 * 1024) : max_line_(max_line_bytes) {}

    /// Feeds bytes; appends every completed event to `out`. Returns false (and stays failed) when
    /// a line exceeds the cap.
    bool feed(std::string_view bytes, std::vector<Event>& out);
    bool failed() const noexcept { return failed_; }
    /// True when a partial event or line is buffered (the stream ended mid-event if it stops here).
    bool has_partial() const noexcept { return !line_.empty() || in_event_; }

private:
    void line(std::string_view l, std::vector<Event>& out);

    std::string line_;
    Event current_;
    bool in_event_ = false;
    bool saw_cr_ = false;
    bool failed_ = false;
    std::size_t max_line_;
};

/// Appends `ev` in canonical form: "event: x\n" (if set), one "data: ..." line per data line,
/// then a blank line. A comment-only event is written as ": text\n\n".
void encode(const Event& ev, std::string& out);
/// Appends "data: <payload>\n\n" (payload must not contain newlines).
void encode_data(std::string_view payload, std::string& out);

}  // namespace sluice::sse
