#include "proxy/stream_relay.hpp"

#include <algorithm>

#include <sluice/clock.hpp>

#include "proxy/event_pump.hpp"
#include "proxy/stream_filters.hpp"
#include "server/client_writer.hpp"
#include "sse/sse.hpp"

namespace sluice::proxy {

namespace {

/// The state of one relayed stream; run() is the loop, each step a member below it.
class StreamRun {
public:
    StreamRun(ClientLink& link, RequestContext& ctx, const Provider& provider, StreamSource source,
              Clock::time_point deadline, const AttemptTimeouts& t, AttemptGuard* guard,
              Clock::time_point began)
        : link_(link),
          ctx_(ctx),
          provider_(provider),
          conn_(source.conn),
          head_(source.head),
          deadline_(deadline),
          t_(t),
          guard_(guard),
          began_(began),
          relay_(provider.make_stream_relay(source.request != nullptr ? *source.request : ctx.api,
                                            stream_output(ctx, filtered_),
                                            unix_seconds(std::chrono::system_clock::now()))),
          payload_(source.local_body) {
        first_token_deadline_ =
            t.first_token > Clock::duration::zero() ? began + t.first_token : Clock::time_point::max();
        if (head_ != nullptr) {
            reader_.emplace(*head_);
        }
    }

    net::awaitable<RelayResult> run() {
        while (true) {
            decode();
            const bool end = failure_ || !reader_ || reader_->done();
            if (end && !failure_) {
                judge_clean_end();
            }
            if (!committed_ && (!out_.empty() || clean_end_)) {
                commit();
            }
            if (!committed_ && failure_) {
                co_return uncommitted();
            }
            if (committed_ && (!out_.empty() || end)) {
                if (!co_await write_out(end)) {
                    ctx_.usage = relay_->usage();
                    co_return RelayResult{};  // the client left: the upstream connection is not reused
                }
            }
            if (end) {
                break;
            }
            if (link_.drain_abort) {
                set_draining();
                continue;  // the terminal event goes out at the top of the loop
            }
            if (!co_await read_upstream()) {
                ctx_.usage = relay_->usage();
                co_return RelayResult{};  // the client left
            }
        }
        co_return finish();
    }

private:
    /// Moves the body's payload through the provider's decoder into out_ (the client's events).
    void decode() {
        if (reader_ && !reader_->consume(conn_->inbuf, payload_)) {
            failure_ =
                GatewayError::upstream_error("The provider sent a malformed chunked body.", "upstream_error");
        }
        out_.clear();
        StreamRelay& r = *relay_;
        bool relay_failed = false;
        if (!failure_ && r.wants_bytes()) {
            relay_failed = !payload_.empty() && !r.on_bytes(payload_, out_);
        } else if (!failure_ && !pump_.feed(payload_, r, out_, !reader_ || reader_->done())) {
            relay_failed = pump_.relay_failed();
            if (!relay_failed) {
                failure_ =
                    GatewayError::upstream_error(std::string_view(pump_.failure()) == "line"
                                                     ? "The provider sent an SSE line over " +
                                                           std::to_string(sse::kMaxLineBytes) + " bytes."
                                                     : "The provider sent an SSE event over " +
                                                           std::to_string(sse::kMaxEventBytes) + " bytes.",
                                                 "upstream_response_too_large");
            }
        }
        if (r.wants_bytes() || failure_) {
            payload_.clear();  // (the pump keeps an incomplete event in payload_ itself)
        }
        if (!failure_ && !relay_failed && (!reader_ || reader_->done())) {
            relay_failed = !relay_->on_end(out_);
        }
        if (relay_failed) {
            // The provider's error event or an answer sluice cannot read, scrubbed of secrets;
            // a rate limit or overload before commit goes to the router as that status.
            if (filtered_ != nullptr && filtered_->stopped_by_filter()) {
                failure_ = r.error();  // the gateway's own verdict: answered as it is, never retried
                filter_stopped_ = true;
                return;
            }
            failure_ = provider_.scrubbed(r.error());
            const int st = failure_->status;
            if ((st == 429 || st >= 500) && failure_->code != "upstream_invalid_response" &&
                failure_->code != "upstream_response_too_large") {
                failure_kind_ = FailKind::status;
            }
        }
    }

    /// The body ended without a failure: complete, unless an unframed body ended by EOF before
    /// the provider's end marker (cut short).
    void judge_clean_end() {
        if (eof_ended_ && !relay_->finished()) {
            failure_ = GatewayError::upstream_error("The provider closed the stream before it finished.",
                                                    "upstream_disconnect");
        } else {
            clean_end_ = true;
        }
    }

    /// The first bytes for the client: from here on nothing is retried.
    void commit() {
        committed_ = true;
        committed_at_ = Clock::now();
        ctx_.status = 200;
        if (guard_ != nullptr) {
            guard_->success();
        }
        response_prefix_ = stream_head(link_, ctx_);
    }

    RelayResult uncommitted() {
        ctx_.usage = relay_->usage();
        AttemptFailure f;
        f.error = std::move(*failure_);
        f.kind = failure_kind_;
        f.status = failure_kind_ == FailKind::status ? f.error.status : 200;
        f.final = filter_stopped_;
        f.gateway_verdict = filter_stopped_ || draining_;
        RelayResult r;
        r.uncommitted = std::move(f);
        return r;
    }

    /// Writes out_ (and at the end of a failed stream its terminal event) as one chunk.
    net::awaitable<bool> write_out(bool end) {
        if (end && !clean_end_) {
            ctx_.error_code = failure_->code;
            out_ += terminal_error_event(*failure_, ctx_.endpoint);
            if (guard_ != nullptr && failure_->source == ErrorSource::upstream) {
                guard_->failure(Clock::duration::zero());
            }
        }
        const bool ok = co_await write_chunk(link_, ctx_, response_prefix_, out_, end);
        response_prefix_.clear();
        co_return ok;
    }

    void set_draining() {
        draining_ = true;
        failure_ = GatewayError::draining();
        failure_->code = "draining";
    }

    /// Waits for more upstream bytes under the idle (and, before commit, first-token) deadline.
    /// false when the client left meanwhile.
    net::awaitable<bool> read_upstream() {
        auto read_deadline = std::min(Clock::now() + t_.idle, deadline_);
        if (!committed_) {
            read_deadline = std::min(read_deadline, first_token_deadline_);
        }
        conn_->deadline().expires_at(read_deadline);
        const error_code ec = co_await read_more(*conn_);
        if (link_.gone) {
            link_.close = true;
            co_return false;
        }
        if (!ec) {
            co_return true;
        }
        if (link_.drain_abort) {
            set_draining();
        } else if (conn_->deadline().expired()) {
            if (committed_) {
                failure_ = GatewayError::upstream_timeout(
                    "The provider sent nothing for too long in the middle of the stream.");
            } else {
                failure_ = GatewayError::upstream_timeout("Provider '" + provider_.name() +
                                                          "' sent no token in time.");
                failure_kind_ = FailKind::timeout;
            }
        } else if (is_eof(ec) && reader_->until_eof()) {
            reader_->on_eof();  // the end of an unframed body; judged at the top of the loop
            eof_ended_ = true;
        } else {
            failure_ = GatewayError::upstream_error(
                "The provider closed the connection in the middle of the stream.", "upstream_disconnect");
            failure_kind_ = FailKind::reset;
        }
        co_return true;
    }

    RelayResult finish() {
        if (clean_end_ && pump_.has_partial() && !relay_->finished()) {
            ctx_.error_code = "upstream_disconnect";
        }
        ctx_.usage = relay_->usage();
        if (clean_end_ && guard_ != nullptr) {
            const auto now = Clock::now();
            const auto tokens = ctx_.usage.completion_tokens;
            guard_->observe(
                ms_between(began_, committed_at_),
                tokens > 1 ? ms_between(committed_at_, now) / static_cast<double>(tokens - 1) : -1.0);
        }
        RelayResult r;
        r.reusable =
            clean_end_ && reader_ && head_->keep_alive && !reader_->until_eof() && conn_->inbuf.empty();
        return r;
    }

    ClientLink& link_;
    RequestContext& ctx_;
    const Provider& provider_;
    UpstreamConnection* conn_;
    const http1::MessageHead* head_;
    const Clock::time_point deadline_;
    const AttemptTimeouts& t_;
    AttemptGuard* guard_;
    const Clock::time_point began_;
    Clock::time_point first_token_deadline_;

    FilteredSink* filtered_ = nullptr;  ///< the stream filters, when the request has any (owned by relay_)
    bool filter_stopped_ = false;
    bool draining_ = false;
    std::unique_ptr<StreamRelay> relay_;
    EventPump pump_;
    std::optional<BodyReader> reader_;
    std::string payload_;          ///< body bytes not yet decoded (an incomplete event)
    std::string out_;              ///< the client's events of this read
    std::string response_prefix_;  ///< the response head, until the first write
    bool committed_ = false;
    Clock::time_point committed_at_{};
    std::optional<GatewayError> failure_;
    FailKind failure_kind_ = FailKind::other;
    bool clean_end_ = false;
    bool eof_ended_ = false;
};

}  // namespace

net::awaitable<RelayResult> relay_stream(ClientLink& link, RequestContext& ctx, const Provider& provider,
                                         StreamSource source, Clock::time_point deadline,
                                         const AttemptTimeouts& t, AttemptGuard* guard,
                                         Clock::time_point attempt_began) {
    StreamRun run(link, ctx, provider, source, deadline, t, guard, attempt_began);
    co_return co_await run.run();
}

}  // namespace sluice::proxy
