#pragma once

// Server-sent events framing, per the WHATWG "event stream" rules: lines end in CRLF, LF or CR
// (a CR at the end of one read may be followed by the LF in the next), `data:` lines of one event
// are joined with LF, `:` lines are comments, a blank line dispatches the event. Bytes may be
// split anywhere. Lines are capped so a peer cannot make sluice buffer without bound.

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::sse {

struct Event {
    std::string event;  ///< `event:` field, empty = "message"
    std::string data;   ///< `data:` lines joined by '\n'
    std::string id;
    bool has_data = false;
    bool comment_only = false;  ///< a block made only of comment lines (e.g. ": keep-alive")
    std::string comment;        ///< text of the last comment line of a comment-only block
    void clear() noexcept {
        event.clear();
        data.clear();
        id.clear();
        comment.clear();
        has_data = false;
        comment_only = false;
    }
};

/// Caps: one line (1 MiB) and one event (8 MiB: an event may be made of many `data:` lines,
/// and a peer that never sends the blank line must not make sluice buffer without bound).
inline constexpr std::size_t kMaxLineBytes = 1024 * 1024;
inline constexpr std::size_t kMaxEventBytes = 8 * 1024 * 1024;

class Decoder {
public:
    explicit Decoder(std::size_t max_line_bytes = kMaxLineBytes, std::size_t max_event_bytes = kMaxEventBytes)
        : max_line_(max_line_bytes), max_event_(max_event_bytes) {}

    /// Feeds bytes and calls `on_event(const Event&)` for every completed event (the event is
    /// reused afterwards: copy what you keep). Returns false, and stays failed, when a line or
    /// an event exceeds its cap.
    template <class OnEvent>
    bool feed(std::string_view bytes, OnEvent&& on_event);
    /// Convenience form collecting copies of the events.
    bool feed(std::string_view bytes, std::vector<Event>& out) {
        return feed(bytes, [&out](const Event& e) { out.push_back(e); });
    }
    bool failed() const noexcept { return failed_; }
    /// Why it failed: "line" or "event" (which cap was crossed); empty while not failed.
    const char* failure() const noexcept { return failure_; }
    /// True when a partial event or line is buffered (the stream ended mid-event if it stops here).
    bool has_partial() const noexcept { return !line_.empty() || in_event_; }

private:
    /// Handles one complete line; returns true when it completed an event.
    bool line(std::string_view l);

    std::string line_;
    Event current_;
    bool in_event_ = false;
    bool saw_cr_ = false;
    bool failed_ = false;
    const char* failure_ = "";
    std::size_t max_line_;
    std::size_t max_event_;
};

template <class OnEvent>
bool Decoder::feed(std::string_view bytes, OnEvent&& on_event) {
    if (failed_) {
        return false;
    }
    const char* p = bytes.data();
    const char* const end = p + bytes.size();
    if (saw_cr_ && p < end && *p == '\n') {
        ++p;  // the LF of a CRLF split across reads
    }
    saw_cr_ = false;
    while (p < end) {
        // Lines usually end in LF: find it with memchr, then look for an earlier CR.
        const auto* lf = static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        const char* stop = lf != nullptr ? lf : end;
        const auto* cr = static_cast<const char*>(std::memchr(p, '\r', static_cast<std::size_t>(stop - p)));
        const char* eol = cr != nullptr ? cr : lf;
        if (eol == nullptr) {
            line_.append(p, static_cast<std::size_t>(end - p));
            if (line_.size() > max_line_) {
                failed_ = true;
                failure_ = "line";
                return false;
            }
            return true;
        }
        bool dispatched = false;
        if (line_.empty()) {
            dispatched = line(std::string_view(p, static_cast<std::size_t>(eol - p)));
        } else {
            line_.append(p, static_cast<std::size_t>(eol - p));
            if (line_.size() > max_line_) {
                failed_ = true;
                failure_ = "line";
                return false;
            }
            dispatched = line(line_);
            line_.clear();
        }
        if (failed_) {
            return false;  // the event outgrew its cap
        }
        if (dispatched) {
            on_event(static_cast<const Event&>(current_));
            current_.clear();
        }
        p = eol + 1;
        if (*eol == '\r') {
            if (p < end && *p == '\n') {
                ++p;
            } else if (p == end) {
                saw_cr_ = true;
            }
        }
    }
    return true;
}

/// Appends `ev` in canonical form: "event: x\n" (if set), one "data: ..." line per data line,
/// then a blank line. A comment-only event is written as ": text\n\n".
void encode(const Event& ev, std::string& out);
/// Appends the "event:" and "id:" lines of `ev` (those that are set).
void encode_fields(const Event& ev, std::string& out);
/// Appends "data: <payload>\n\n" (payload must not contain newlines).
void encode_data(std::string_view payload, std::string& out);

}  // namespace sluice::sse
