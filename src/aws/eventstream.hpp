#pragma once

// The AWS event-stream binary framing (Bedrock ConverseStream): each message is
//   total length (u32 BE) | headers length (u32 BE) | prelude CRC32 (u32 BE, of the 8 bytes before)
//   | headers | payload | message CRC32 (u32 BE, of everything before it)
// and a header is  name length (u8) | name | value type (u8) | value. Decoded incrementally:
// bytes may arrive split anywhere. A bad CRC or an impossible length fails the stream.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace sluice::aws {

/// CRC-32 (IEEE 802.3, as zlib's crc32).
std::uint32_t crc32(std::string_view data, std::uint32_t crc = 0);

struct EventMessage {
    std::map<std::string, std::string> headers;  ///< string-typed headers (others are skipped)
    std::string payload;
};

/// Encodes one message with string headers (for test peers; sluice itself only decodes).
std::string encode_message(const std::map<std::string, std::string>& headers, std::string_view payload);

class EventStreamDecoder {
public:
    /// AWS allows 16 MiB; sluice holds at most 8 MiB of one frame (its stream buffer cap).
    static constexpr std::size_t kMaxMessage = 8 * 1024 * 1024;

    /// Feeds bytes; calls `on_message(const EventMessage&)` per complete message. False (and
    /// failed() with a reason) on a corrupt frame; nothing after it is decoded.
    template <class OnMessage>
    bool feed(std::string_view bytes, OnMessage&& on_message) {
        if (!error_.empty()) {
            return false;
        }
        buffer_.append(bytes);
        std::size_t pos = 0;
        while (true) {
            EventMessage msg;
            const std::size_t used = decode_one(std::string_view(buffer_).substr(pos), msg);
            if (!error_.empty()) {
                return false;
            }
            if (used == 0) {
                break;
            }
            on_message(static_cast<const EventMessage&>(msg));
            pos += used;
        }
        buffer_.erase(0, pos);
        return true;
    }
    bool failed() const noexcept { return !error_.empty(); }
    const std::string& error() const noexcept { return error_; }
    bool has_partial() const noexcept { return !buffer_.empty(); }

private:
    /// Decodes one message from the front of `in`; 0 when incomplete (or on error).
    std::size_t decode_one(std::string_view in, EventMessage& out);

    std::string buffer_;
    std::string error_;
};

}  // namespace sluice::aws
