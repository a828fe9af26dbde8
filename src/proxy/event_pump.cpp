#include "proxy/event_pump.hpp"

#include <cstring>

namespace sluice::proxy {

bool EventPump::decode(std::string_view bytes, StreamRelay& relay, std::string& out) {
    if (bytes.empty()) {
        return true;
    }
    const bool ok = decoder_.feed(bytes, [this, &relay, &out](const sse::Event& ev) {
        if (!relay_failed_ && !relay.on_event(ev, out)) {
            relay_failed_ = true;  // later events of this read are ignored
        }
    });
    return ok && !relay_failed_;
}

bool EventPump::feed(std::string& payload, StreamRelay& relay, std::string& out, bool at_end) {
    const bool fast = relay.takes_plain_data() && !decoder_.has_partial() &&
                      std::memchr(payload.data(), '\r', payload.size()) == nullptr;
    if (!fast) {
        const bool ok = decode(payload, relay, out);
        payload.clear();
        return ok;
    }
    const char* const d = payload.data();
    const std::size_t n = payload.size();
    std::size_t pos = 0;
    while (pos < n) {
        // The event ends at the first "\n\n"; any other LF on the way makes it multi-line.
        bool one_line = true;
        std::size_t lf = pos;
        std::size_t end = 0;
        while (true) {
            const auto* p = static_cast<const char*>(std::memchr(d + lf, '\n', n - lf));
            if (p == nullptr) {
                break;
            }
            lf = static_cast<std::size_t>(p - d);
            if (lf + 1 < n && d[lf + 1] == '\n') {
                end = lf + 2;
                break;
            }
            if (lf + 1 == n) {
                break;  // the blank line may be in the next read
            }
            one_line = false;
            ++lf;
        }
        if (end == 0) {
            break;
        }
        const std::string_view raw(d + pos, end - pos);
        const bool plain = one_line && raw.size() >= 8 && raw.compare(0, 6, "data: ") == 0;
        if (!(plain && relay.on_plain_data(raw.substr(6, raw.size() - 8), raw, out)) &&
            !decode(raw, relay, out)) {
            payload.clear();
            return false;
        }
        pos = end;
    }
    payload.erase(0, pos);
    if (at_end || payload.size() > kMaxCarry) {
        const bool ok = decode(payload, relay, out);
        payload.clear();
        return ok;
    }
    return true;
}

}  // namespace sluice::proxy
