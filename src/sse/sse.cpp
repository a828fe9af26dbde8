#include "sse/sse.hpp"

namespace sluice::sse {

bool Decoder::line(std::string_view l) {
    if (l.empty()) {
        if (!in_event_) {
            return false;
        }
        in_event_ = false;
        if (current_.has_data || current_.comment_only) {
            return true;
        }
        current_.clear();
        return false;
    }
    if (!in_event_) {
        in_event_ = true;
        current_.comment_only = true;
    }
    if (l.front() == ':') {
        auto text = l.substr(1);
        if (!text.empty() && text.front() == ' ') {
            text.remove_prefix(1);
        }
        current_.comment.assign(text);
        return false;
    }
    current_.comment_only = false;
    const auto colon = l.find(':');
    std::string_view field = l.substr(0, colon);
    std::string_view value;
    if (colon != std::string_view::npos) {
        value = l.substr(colon + 1);
        if (!value.empty() && value.front() == ' ') {
            value.remove_prefix(1);
        }
    }
    if (field == "data") {
        if (current_.data.size() + value.size() + 1 > max_event_) {
            failed_ = true;
            failure_ = "event";
            return false;
        }
        if (current_.has_data) {
            current_.data.push_back('\n');
        }
        current_.data.append(value);
        current_.has_data = true;
    } else if (field == "event") {
        current_.event.assign(value);
    } else if (field == "id") {
        if (value.find('\0') == std::string_view::npos) {
            current_.id.assign(value);
        }
    }
    // `retry:` and unknown fields are ignored, as the standard says.
    return false;
}

void encode(const Event& ev, std::string& out) {
    if (ev.comment_only) {
        out += ": ";
        out += ev.comment;
        out += "\n\n";
        return;
    }
    encode_fields(ev, out);
    std::size_t pos = 0;
    while (true) {
        const auto nl = ev.data.find('\n', pos);
        out += "data: ";
        out.append(ev.data, pos, nl == std::string::npos ? std::string::npos : nl - pos);
        out += '\n';
        if (nl == std::string::npos) {
            break;
        }
        pos = nl + 1;
    }
    out += '\n';
}

void encode_fields(const Event& ev, std::string& out) {
    if (!ev.event.empty()) {
        out += "event: ";
        out += ev.event;
        out += '\n';
    }
    if (!ev.id.empty()) {
        out += "id: ";
        out += ev.id;
        out += '\n';
    }
}

void encode_data(std::string_view payload, std::string& out) {
    out += "data: ";
    out += payload;
    out += "\n\n";
}

}  // namespace sluice::sse
