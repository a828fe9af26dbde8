#include "util/base64.hpp"

#include <cstring>

namespace sluice {

std::string base64_encode(const unsigned char* data, std::size_t n) {
    static constexpr char kTable[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((n + 2) / 3 * 4);
    for (std::size_t i = 0; i < n; i += 3) {
        const unsigned v = (static_cast<unsigned>(data[i]) << 16) |
                           (i + 1 < n ? static_cast<unsigned>(data[i + 1]) << 8 : 0U) |
                           (i + 2 < n ? static_cast<unsigned>(data[i + 2]) : 0U);
        out.push_back(kTable[(v >> 18) & 63]);
        out.push_back(kTable[(v >> 12) & 63]);
        out.push_back(i + 1 < n ? kTable[(v >> 6) & 63] : '=');
        out.push_back(i + 2 < n ? kTable[v & 63] : '=');
    }
    return out;
}

std::string base64_floats(const std::vector<float>& values) {
    // x86-64 and aarch64 Linux are little-endian, which is the byte order OpenAI's format uses.
    std::vector<unsigned char> bytes(values.size() * sizeof(float));
    std::memcpy(bytes.data(), values.data(), bytes.size());
    return base64_encode(bytes.data(), bytes.size());
}

}  // namespace sluice
