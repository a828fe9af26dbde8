#include "aws/eventstream.hpp"

#include <array>

namespace sluice::aws {

namespace {

constexpr std::array<std::uint32_t, 256> make_table() {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) {
            c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
        }
        t[i] = c;
    }
    return t;
}
constexpr auto kTable = make_table();

std::uint32_t be32(std::string_view s, std::size_t at) {
    return (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at])) << 24) |
           (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 1])) << 16) |
           (static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 2])) << 8) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(s[at + 3]));
}

}  // namespace

std::uint32_t crc32(std::string_view data, std::uint32_t crc) {
    crc = ~crc;
    for (const char ch : data) {
        crc = kTable[(crc ^ static_cast<unsigned char>(ch)) & 0xFFU] ^ (crc >> 8);
    }
    return ~crc;
}

std::string encode_message(const std::map<std::string, std::string>& headers, std::string_view payload) {
    std::string h;
    for (const auto& [k, v] : headers) {
        h.push_back(static_cast<char>(k.size()));
        h += k;
        h.push_back(7);  // string
        h.push_back(static_cast<char>((v.size() >> 8) & 0xFF));
        h.push_back(static_cast<char>(v.size() & 0xFF));
        h += v;
    }
    auto be = [](std::uint32_t v) {
        return std::string{static_cast<char>(v >> 24), static_cast<char>((v >> 16) & 0xFF),
                           static_cast<char>((v >> 8) & 0xFF), static_cast<char>(v & 0xFF)};
    };
    const auto total = static_cast<std::uint32_t>(16 + h.size() + payload.size());
    std::string out = be(total) + be(static_cast<std::uint32_t>(h.size()));
    out += be(crc32(out));
    out += h;
    out += payload;
    out += be(crc32(out));
    return out;
}

std::size_t EventStreamDecoder::decode_one(std::string_view in, EventMessage& out) {
    if (in.size() < 12) {
        return 0;
    }
    const std::uint32_t total = be32(in, 0);
    const std::uint32_t headers_len = be32(in, 4);
    if (crc32(in.substr(0, 8)) != be32(in, 8)) {
        error_ = "event-stream prelude CRC mismatch";
        return 0;
    }
    if (total < 16 || total > kMaxMessage || headers_len > total - 16) {
        error_ = "event-stream message length out of range";
        return 0;
    }
    if (in.size() < total) {
        return 0;
    }
    if (crc32(in.substr(0, total - 4)) != be32(in, total - 4)) {
        error_ = "event-stream message CRC mismatch";
        return 0;
    }
    const std::string_view headers = in.substr(12, headers_len);
    std::size_t p = 0;
    while (p < headers.size()) {
        const std::size_t name_len = static_cast<unsigned char>(headers[p++]);
        if (p + name_len + 1 > headers.size()) {
            error_ = "event-stream header truncated";
            return 0;
        }
        std::string name(headers.substr(p, name_len));
        p += name_len;
        const auto type = static_cast<unsigned char>(headers[p++]);
        std::size_t value_len = 0;
        switch (type) {
            case 0:
            case 1: value_len = 0; break;  // bool true / false
            case 2: value_len = 1; break;  // byte
            case 3: value_len = 2; break;  // short
            case 4: value_len = 4; break;  // int
            case 5:
            case 8: value_len = 8; break;   // long, timestamp
            case 9: value_len = 16; break;  // uuid
            case 6:
            case 7: {  // bytes, string: u16 length first
                if (p + 2 > headers.size()) {
                    error_ = "event-stream header truncated";
                    return 0;
                }
                value_len = (static_cast<std::size_t>(static_cast<unsigned char>(headers[p])) << 8) |
                            static_cast<unsigned char>(headers[p + 1]);
                p += 2;
                break;
            }
            default: error_ = "event-stream header of unknown type"; return 0;
        }
        if (p + value_len > headers.size()) {
            error_ = "event-stream header truncated";
            return 0;
        }
        if (type == 7) {
            out.headers[std::move(name)] = std::string(headers.substr(p, value_len));
        }
        p += value_len;
    }
    out.payload.assign(in.substr(12 + headers_len, total - 16 - headers_len));
    return total;
}

}  // namespace sluice::aws
