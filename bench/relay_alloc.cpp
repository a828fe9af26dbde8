// sluice-relay-bench: the stream relay's per-event cost without sockets. Runs the 100-event
// stream of `make bench`'s static-sse case (OpenAI chunks, a usage chunk, [DONE]) through the
// OpenAI relay, fed in 16 KiB reads, two ways: every event decoded (the WHATWG decoder and
// on_event) and the event pump (plain events on the fast path). A counting operator new reports
// the allocations of each: per request (the relay and its buffers) and per event in the steady
// state. Prints one line per way; exits 1 when the pump allocates per event.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "providers/openai_wire.hpp"
#include "proxy/event_pump.hpp"
#include "sse/sse.hpp"

namespace {
std::atomic<std::uint64_t> g_allocs{0};
}

void* operator new(std::size_t n) {
    g_allocs.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n == 0 ? 1 : n)) {
        return p;
    }
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}

namespace {

using sluice::OpenAiStreamRelay;

std::string static_stream(int words) {
    const std::string head =
        R"(data: {"id":"chatcmpl-static","object":"chat.completion.chunk","created":1700000000,"model":"mock-gpt-4o","choices":[{"index":0,"delta":)";
    std::string s = head + R"({"role":"assistant","content":""},"finish_reason":null}]})"
                           "\n\n";
    for (int i = 0; i < words; ++i) {
        s += head + R"({"content":"word "},"finish_reason":null}]})"
                    "\n\n";
    }
    s += head + R"({},"finish_reason":"stop"}]})"
                "\n\n";
    s +=
        R"(data: {"id":"chatcmpl-static","object":"chat.completion.chunk","created":1700000000,"model":"mock-gpt-4o","choices":[],"usage":{"prompt_tokens":112,"completion_tokens":98,"total_tokens":210}})"
        "\n\n";
    s += "data: [DONE]\n\n";
    return s;
}

constexpr std::size_t kRead = 16384;

/// One request the old way: every event decoded and handed to on_event.
std::size_t decode_all(const std::string& body, std::string& out) {
    OpenAiStreamRelay relay(false);
    sluice::sse::Decoder decoder;
    std::size_t bytes = 0;
    for (std::size_t at = 0; at < body.size(); at += kRead) {
        out.clear();
        decoder.feed(std::string_view(body).substr(at, kRead),
                     [&](const sluice::sse::Event& ev) { relay.on_event(ev, out); });
        bytes += out.size();
    }
    return bytes;
}

/// One request through the event pump, as the stream relay runs it.
std::size_t pump_all(const std::string& body, std::string& payload, std::string& out) {
    OpenAiStreamRelay relay(false);
    sluice::proxy::EventPump pump;
    std::size_t bytes = 0;
    payload.clear();
    for (std::size_t at = 0; at < body.size(); at += kRead) {
        out.clear();
        payload.append(body, at, kRead);
        pump.feed(payload, relay, out, at + kRead >= body.size());
        bytes += out.size();
    }
    return bytes;
}

/// Prints the figures of one way; returns the allocations of one request in the steady state.
template <class Run>
std::uint64_t measure(const char* name, int events, Run&& run) {
    const int kRequests = 2000000 / events;
    run();  // warm the reused buffers
    const auto a0 = g_allocs.load();
    run();
    const auto per_request = g_allocs.load() - a0;
    const auto t0 = std::chrono::steady_clock::now();
    const auto a1 = g_allocs.load();
    std::size_t bytes = 0;
    for (int i = 0; i < kRequests; ++i) {
        bytes += run();
    }
    const auto allocs = g_allocs.load() - a1;
    const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-13s %5d events: %7.1f ns/event  %5.2f allocations/request  (%zu bytes out)\n", name,
                events, ns / (static_cast<double>(kRequests) * events),
                static_cast<double>(allocs) / kRequests, bytes / static_cast<std::size_t>(kRequests));
    return per_request;
}

}  // namespace

int main() {
    std::string out;
    std::string payload;
    std::uint64_t pump_allocs[2] = {0, 0};
    int i = 0;
    for (const int words : {97, 997}) {
        const std::string body = static_stream(words);
        const int events = words + 4;
        out.reserve(body.size());
        payload.reserve(body.size());
        measure("decode-every", events, [&] { return decode_all(body, out); });
        pump_allocs[i++] = measure("event-pump", events, [&] { return pump_all(body, payload, out); });
    }
    // Steady state: the relay and its few buffers per request, nothing per event.
    if (pump_allocs[0] != pump_allocs[1]) {
        std::printf("FAIL: the event pump allocates per event (%llu vs %llu allocations per request)\n",
                    static_cast<unsigned long long>(pump_allocs[0]),
                    static_cast<unsigned long long>(pump_allocs[1]));
        return 1;
    }
    std::printf("ok: no allocation per event on the stream path (%llu per request, whatever its length)\n",
                static_cast<unsigned long long>(pump_allocs[0]));
    return 0;
}
