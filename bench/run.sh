#!/usr/bin/env bash
# make bench: sluice vs nginx (plain reverse proxy) in front of the same in-repo mock upstream.
# The proxy under test is pinned to CPU 0; wrk and the mock share CPU 1. For each case it prints
# requests/s, p50/p99 latency, CPU microseconds per request of the proxy (utime+stime from
# /proc) and the proxy's RSS. Knobs: BENCH_DURATION (default 5s), BENCH_CASES (space-separated
# filter of case names), BUILD_DIR (argument 1).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${1:-build}
DURATION=${BENCH_DURATION:-5s}
OUT=bench/out
rm -rf "$OUT"
mkdir -p "$OUT/certs" "$OUT/nginx/logs"
NCPU=$(nproc)
PROXY_CPU=0
LOAD_CPU=$(( NCPU > 1 ? 1 : 0 ))
TICK=$(getconf CLK_TCK)

for tool in wrk nginx taskset openssl; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is missing (make deps installs it)"; exit 1; }
done

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])' 2>/dev/null \
  || shuf -i 20000-60000 -n 1; }

# Test PKI for the TLS upstream.
(
  cd "$OUT/certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout srv.key -out srv.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > ext.cnf
  openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf \
    -out srv.pem 2>/dev/null
)

MOCK_PORT=$(free_port); MOCK_TLS_PORT=$(free_port); SLUICE_PORT=$(free_port); NGINX_PORT=$(free_port)
STATIC_PORT=$(free_port); STATIC_TLS_PORT=$(free_port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# The static upstream: a second nginx, on the load CPU, answering every chat request with the
# same fixed bytes (a ~400 B JSON completion, or a 100-event SSE stream with usage), so the
# upstream costs almost nothing and each proxy's CPU column is its own per-request and per-event
# work. It is its own instance, not a server block of the nginx under test: that one's CPU is
# measured, and serving the answers must not be counted as proxying them.
STATIC_JSON='{"id":"chatcmpl-static","object":"chat.completion","created":1700000000,"model":"mock-gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"A short deterministic answer from the static upstream, about the size of a real reply."},"finish_reason":"stop"}],"usage":{"prompt_tokens":112,"completion_tokens":17,"total_tokens":129}}'
STATIC_SSE='data: {"id":"chatcmpl-static","object":"chat.completion.chunk","created":1700000000,"model":"mock-gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n'
for i in $(seq 1 98); do
  STATIC_SSE+='data: {"id":"chatcmpl-static","object":"chat.completion.chunk","created":1700000000,"model":"mock-gpt-4o","choices":[{"index":0,"delta":{"content":"word "},"finish_reason":null}]}\n\n'
done
STATIC_SSE+='data: {"id":"chatcmpl-static","object":"chat.completion.chunk","created":1700000000,"model":"mock-gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
STATIC_SSE+='data: {"id":"chatcmpl-static","object":"chat.completion.chunk","created":1700000000,"model":"mock-gpt-4o","choices":[],"usage":{"prompt_tokens":112,"completion_tokens":98,"total_tokens":210}}\n\n'
STATIC_SSE+='data: [DONE]\n\n'
mkdir -p "$OUT/static-nginx/logs" "$OUT/static-nginx/www/json/v1/chat" "$OUT/static-nginx/www/sse/v1/chat"
printf '%s' "$STATIC_JSON" > "$OUT/static-nginx/www/json/v1/chat/completions"
printf '%b' "$STATIC_SSE" > "$OUT/static-nginx/www/sse/v1/chat/completions"
cat > "$OUT/static-nginx/nginx.conf" <<NGINX
worker_processes 1;
pid $PWD/$OUT/static-nginx/nginx.pid;
error_log $PWD/$OUT/static-nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $PWD/$OUT/static-nginx/body;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$STATIC_PORT;
    listen 127.0.0.1:$STATIC_TLS_PORT ssl;
    ssl_certificate $PWD/$OUT/certs/srv.pem;
    ssl_certificate_key $PWD/$OUT/certs/srv.key;
    root $PWD/$OUT/static-nginx/www;
    # Static files answer GET only; a POST's 405 is turned into the file (nginx redirects it
    # internally as a GET).
    error_page 405 =200 \$uri;
    location /json/ { default_type application/json; }
    location /sse/ { default_type text/event-stream; }
  }
}
NGINX
taskset -c "$LOAD_CPU" nginx -p "$PWD/$OUT/static-nginx" -c "$PWD/$OUT/static-nginx/nginx.conf" \
  -g 'daemon off;' > "$OUT/static-nginx/stdout.log" 2>&1 &
pids+=($!)

taskset -c "$LOAD_CPU" "$BUILD_DIR/sluice-mock-upstream" --port "$MOCK_PORT" --tls-port "$MOCK_TLS_PORT" \
  --cert "$OUT/certs/srv.pem" --key "$OUT/certs/srv.key" --threads 1 > "$OUT/mock.log" 2>&1 &
pids+=($!)

cat > "$OUT/sluice.yaml" <<YAML
server:
  listen: "127.0.0.1:$SLUICE_PORT"
  threads: 1
log:
  level: info
  format: text
providers:
  plain:
    kind: openai
    base_url: "http://127.0.0.1:$MOCK_PORT/v1"
    api_key: "sk-bench-provider-key"
  tls:
    kind: openai
    base_url: "https://localhost:$MOCK_TLS_PORT/v1"
    api_key: "sk-bench-provider-key"
    ca_file: "$PWD/$OUT/certs/ca.pem"
  anthropic:
    kind: anthropic
    base_url: "http://127.0.0.1:$MOCK_PORT"
    api_key: "sk-bench-provider-key"
  w1: {kind: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1", api_key: "sk-bench-provider-key"}
  w2: {kind: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1", api_key: "sk-bench-provider-key"}
  w3: {kind: openai, base_url: "http://127.0.0.1:$MOCK_PORT/v1", api_key: "sk-bench-provider-key"}
  static-json: {kind: openai, base_url: "http://127.0.0.1:$STATIC_PORT/json/v1", api_key: "sk-bench-provider-key"}
  static-sse: {kind: openai, base_url: "http://127.0.0.1:$STATIC_PORT/sse/v1", api_key: "sk-bench-provider-key"}
  statictls-json:
    kind: openai
    base_url: "https://localhost:$STATIC_TLS_PORT/json/v1"
    api_key: "sk-bench-provider-key"
    ca_file: "$PWD/$OUT/certs/ca.pem"
  statictls-sse:
    kind: openai
    base_url: "https://localhost:$STATIC_TLS_PORT/sse/v1"
    api_key: "sk-bench-provider-key"
    ca_file: "$PWD/$OUT/certs/ca.pem"
routes:
  - model: "static-json"
    targets: [{provider: static-json, model: "mock-gpt-4o"}]
  - model: "static-sse"
    targets: [{provider: static-sse, model: "mock-gpt-4o"}]
  - model: "statictls-json"
    targets: [{provider: statictls-json, model: "mock-gpt-4o"}]
  - model: "statictls-sse"
    targets: [{provider: statictls-sse, model: "mock-gpt-4o"}]
  - model: "wt3"   # routing on the happy path: three weighted targets, breakers on, retries on
    targets:
      - {provider: w1, model: "mock-gpt-4o", weight: 2}
      - {provider: w2, model: "mock-gpt-4o", weight: 1}
      - {provider: w3, model: "mock-gpt-4o", weight: 1}
  - model: "plain"
    targets: [{provider: plain, model: "mock-gpt-4o"}]
  - model: "anthropic"
    targets: [{provider: anthropic, model: "claude-bench"}]
  - model: "tls"
    targets: [{provider: tls, model: "mock-gpt-4o"}]
keys:
  - name: bench
    key: "sluice-bench-key"
YAML
taskset -c "$PROXY_CPU" "$BUILD_DIR/sluice" --config "$OUT/sluice.yaml" > "$OUT/sluice.log" 2>&1 &
SLUICE_PID=$!
pids+=($SLUICE_PID)

# One proxying location per upstream: nginx as a plain reverse proxy, keep-alive to the
# upstream, no buffering, and for https upstreams the same verification sluice does.
proxy_location() { # path upstream-url
  local tls=""
  if [[ $2 == https://* ]]; then
    tls="
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate $PWD/$OUT/certs/ca.pem;
      proxy_ssl_session_reuse on;"
  fi
  cat <<LOC
    location /$1/ {
      proxy_pass $2;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer sk-bench-provider-key";$tls
      proxy_buffering off;
    }
LOC
}
PROXY_LOCATIONS=$(proxy_location plain http://mock_plain/; proxy_location tls https://mock_tls/
  for body in json sse; do
    proxy_location "static-$body" "http://static_plain/$body/"
    proxy_location "statictls-$body" "https://static_tls/$body/"
  done)
cat > "$OUT/nginx/nginx.conf" <<NGINX
worker_processes 1;
worker_cpu_affinity 1;
pid $PWD/$OUT/nginx/nginx.pid;
error_log $PWD/$OUT/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log $PWD/$OUT/nginx/logs/access.log;
  client_body_temp_path $PWD/$OUT/nginx/body;
  proxy_temp_path $PWD/$OUT/nginx/proxy;
  upstream mock_plain { server 127.0.0.1:$MOCK_PORT; keepalive 128; }
  upstream mock_tls { server 127.0.0.1:$MOCK_TLS_PORT; keepalive 128; }
  upstream static_plain { server 127.0.0.1:$STATIC_PORT; keepalive 128; }
  upstream static_tls { server 127.0.0.1:$STATIC_TLS_PORT; keepalive 128; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    keepalive_requests 100000;
$PROXY_LOCATIONS
  }
}
NGINX
taskset -c "$PROXY_CPU" nginx -p "$PWD/$OUT/nginx" -c "$PWD/$OUT/nginx/nginx.conf" -g 'daemon off;' \
  > "$OUT/nginx/stdout.log" 2>&1 &
NGINX_PID=$!
pids+=($NGINX_PID)

for i in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$SLUICE_PORT/healthz" >/dev/null 2>&1 && \
     [ -s "$OUT/nginx/nginx.pid" ]; then break; fi
  sleep 0.05
done

# ~1 KB request bodies; the mock answers ~400 B of JSON, or 100 SSE chunks.
PROMPT=$(printf 'The quick brown fox jumps over the lazy dog. %.0s' $(seq 1 19))
JSON_BODY="{\"model\":\"MODEL\",\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":\"$PROMPT\"}],\"temperature\":0.2,\"mock\":{\"content\":\"A short deterministic answer.\"}}"
SSE_BODY="{\"model\":\"MODEL\",\"stream\":true,\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":\"$PROMPT\"}],\"temperature\":0.2,\"mock\":{\"chunks\":100,\"content\":\"$PROMPT$PROMPT\"}}"

# OpenAI client -> Anthropic upstream (translated): the mock echoes the user message word by
# word, so 91 words + its 9-word preamble make a 100-delta stream like the SSE case above.
WORDS91=$(printf 'word%.0s ' $(seq 1 91))
ANTHROPIC_BODY="{\"model\":\"anthropic\",\"stream\":true,\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"},{\"role\":\"user\",\"content\":\"${WORDS91% }\"}],\"temperature\":0.2}"

lua_for() { # body file
  cat > "$2" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sluice-bench-key"
local f = io.open("$1", "r"); wrk.body = f:read("*a"); f:close()
LUA
}

proc_cpu_ticks() { # all processes of a tree
  local total=0 p
  for p in "$@"; do
    if [ -r "/proc/$p/stat" ]; then
      total=$(( total + $(awk '{print $14 + $15}' "/proc/$p/stat") ))
    fi
  done
  echo "$total"
}
tree_pids() { echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"; }
rss_kb() { local t=0 p; for p in "$@"; do [ -r "/proc/$p/status" ] && t=$(( t + $(awk '/VmRSS/{print $2}' "/proc/$p/status") )); done; echo "$t"; }
to_ms() { awk -v v="$1" 'BEGIN{ if (v ~ /us$/) {sub(/us/,"",v); printf "%.3f", v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v); printf "%.3f", v} else if (v ~ /s$/) {sub(/s/,"",v); printf "%.3f", v*1000} else print v }'; }

printf '%-8s %-6s %-6s %-5s %10s %9s %9s %9s %8s %7s\n' proxy body up conns "req/s" "p50 ms" "p99 ms" "cpu us/r" "rss MB" errors | tee "$OUT/results.txt"
run_case() { # proxy body upstream conns
  local proxy=$1 body=$2 up=$3 conns=$4 url pidlist
  local name="$proxy-$body-$up-c$conns"
  if [ -n "${BENCH_CASES:-}" ] && ! grep -qw -- "$name" <<<"$BENCH_CASES"; then return; fi
  local bf="$OUT/$body-$up.json" model=$up
  case $up in static*) model="$up-$body";; esac  # one static answer per body kind
  if [ "$body" = json ]; then echo "${JSON_BODY/MODEL/$model}" > "$bf";
  elif [ "$up" = anthropic ]; then echo "$ANTHROPIC_BODY" > "$bf";
  else echo "${SSE_BODY/MODEL/$model}" > "$bf"; fi
  lua_for "$bf" "$OUT/$body-$up.lua"
  if [ "$proxy" = sluice ]; then
    url="http://127.0.0.1:$SLUICE_PORT/v1/chat/completions"; pidlist=$(tree_pids "$SLUICE_PID")
  else
    url="http://127.0.0.1:$NGINX_PORT/$model/v1/chat/completions"; pidlist=$(tree_pids "$(cat "$OUT/nginx/nginx.pid")")
  fi
  # Warm-up (connections, TLS sessions), then the measured run.
  taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d1s -s "$OUT/$body-$up.lua" "$url" > /dev/null 2>&1 || true
  local before after out
  before=$(proc_cpu_ticks $pidlist)
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"$DURATION" --latency -s "$OUT/$body-$up.lua" "$url")
  after=$(proc_cpu_ticks $pidlist)
  echo "$out" > "$OUT/wrk-$name.txt"
  local reqs rps p50 p99 errors non2xx cpu_us rss
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  rps=$(awk '/Requests\/sec/{printf "%.0f", $2}' <<<"$out")
  p50=$(to_ms "$(awk '$1=="50%"{print $2}' <<<"$out")")
  p99=$(to_ms "$(awk '$1=="99%"{print $2}' <<<"$out")")
  errors=$(awk '/Socket errors/{gsub(",","");print $4+$6+$8+$10}' <<<"$out"); errors=${errors:-0}
  non2xx=$(awk '/Non-2xx/{print $5}' <<<"$out"); non2xx=${non2xx:-0}
  cpu_us=$(awk -v a="$after" -v b="$before" -v t="$TICK" -v n="$reqs" 'BEGIN{ if (n>0) printf "%.1f", (a-b)/t*1e6/n; else print "n/a" }')
  rss=$(awk -v k="$(rss_kb $pidlist)" 'BEGIN{printf "%.1f", k/1024}')
  printf '%-8s %-6s %-6s %-5s %10s %9s %9s %9s %8s %7s\n' "$proxy" "$body" "$up" "$conns" "$rps" "$p50" "$p99" "$cpu_us" "$rss" "$((errors + non2xx))" | tee -a "$OUT/results.txt"
}

for body in json sse; do
  for up in plain tls; do
    for conns in 1 64; do
      for proxy in sluice nginx; do
        run_case "$proxy" "$body" "$up" "$conns"
      done
    done
  done
done
# Static upstream: the proxies' own cost, with an upstream that costs almost nothing.
for body in json sse; do
  for up in static statictls; do
    for conns in 1 64; do
      for proxy in sluice nginx; do
        run_case "$proxy" "$body" "$up" "$conns"
      done
    done
  done
done
# Translation: OpenAI client -> sluice -> Anthropic upstream, against nginx's plain SSE proxying
# above (nginx cannot translate).
for conns in 1 64; do
  run_case sluice sse anthropic "$conns"
done
# Same as "sluice plain", through a three-target weighted route (compare the two rows).
for body in json sse; do
  for conns in 1 64; do
    run_case sluice "$body" wt3 "$conns"
  done
done
# Many streams: 8,000 concurrent slow streams (one event a second for 20 s from a small
# asynchronous upstream) through a fresh sluice and a fresh nginx (proxy_buffering off), one
# at a time, each on the proxy CPU. Reports the streams that completed with every event, the
# proxy's peak RSS (VmHWM, summed over its processes), its RSS 10 s after the streams ended and
# its CPU seconds. Knobs: MANY_STREAMS (8000), MANY_EVENTS (20).
many_streams_case() { # proxy
  local proxy=$1 name="$1-many-streams"
  if [ -n "${BENCH_CASES:-}" ] && ! grep -qw -- "$name" <<<"$BENCH_CASES"; then return; fi
  local streams=${MANY_STREAMS:-8000} events=${MANY_EVENTS:-20}
  local up_port proxy_port pid pidlist url_path
  up_port=$(free_port); proxy_port=$(free_port)
  ( ulimit -n 20000; exec taskset -c "$LOAD_CPU" "$BUILD_DIR/sluice-many-streams" upstream --port "$up_port" \
      --events "$events" --interval-ms 1000 ) > "$OUT/many-upstream-$proxy.log" 2>&1 &
  local up_pid=$!
  pids+=($up_pid)
  if [ "$proxy" = sluice ]; then
    cat > "$OUT/many-sluice.yaml" <<YAML
server:
  listen: "127.0.0.1:$proxy_port"
  threads: 1
  max_connections: 9000
log:
  level: warn
providers:
  slow:
    kind: openai
    base_url: "http://127.0.0.1:$up_port/v1"
    api_key: "sk-bench-provider-key"
    max_connections: 9000
routes:
  - model: "many"
    targets: [{provider: slow, model: "mock-gpt-4o"}]
keys:
  - name: bench
    key: "sluice-bench-key"
YAML
    ( ulimit -n 20000; exec taskset -c "$PROXY_CPU" "$BUILD_DIR/sluice" --config "$OUT/many-sluice.yaml" ) \
      > "$OUT/many-sluice.log" 2>&1 &
    pid=$!
    url_path=/v1/chat/completions
  else
    mkdir -p "$OUT/many-nginx/logs"
    cat > "$OUT/many-nginx/nginx.conf" <<NGINX
worker_processes 1;
worker_cpu_affinity 1;
worker_rlimit_nofile 20000;
pid $PWD/$OUT/many-nginx/nginx.pid;
error_log $PWD/$OUT/many-nginx/logs/error.log warn;
events { worker_connections 19000; }
http {
  access_log $PWD/$OUT/many-nginx/logs/access.log;
  client_body_temp_path $PWD/$OUT/many-nginx/body;
  proxy_temp_path $PWD/$OUT/many-nginx/proxy;
  upstream slow { server 127.0.0.1:$up_port; keepalive 128; }
  server {
    listen 127.0.0.1:$proxy_port backlog=8192;
$(proxy_location many http://slow/)
  }
}
NGINX
    ( ulimit -n 20000; exec taskset -c "$PROXY_CPU" nginx -p "$PWD/$OUT/many-nginx" \
        -c "$PWD/$OUT/many-nginx/nginx.conf" -g 'daemon off;' ) > "$OUT/many-nginx/stdout.log" 2>&1 &
    pid=$!
    url_path=/many/v1/chat/completions
  fi
  pids+=($pid)
  sleep 1
  pidlist=$(tree_pids "$pid")
  local before after client hwm rss_after
  before=$(proc_cpu_ticks $pidlist)
  client=$( ( ulimit -n 20000; taskset -c "$LOAD_CPU" "$BUILD_DIR/sluice-many-streams" clients \
      --port "$proxy_port" --path "$url_path" --streams "$streams" --events "$events" --ramp-ms 4000 ) || true)
  hwm=$(for p in $pidlist; do awk '/VmHWM/{print $2}' "/proc/$p/status" 2>/dev/null; done | awk '{t+=$1} END{printf "%.1f", t/1024}')
  sleep 10
  rss_after=$(awk -v k="$(rss_kb $pidlist)" 'BEGIN{printf "%.1f", k/1024}')
  after=$(proc_cpu_ticks $pidlist)
  local completed
  completed=$(sed -n 's/.*completed=\([0-9]*\).*/\1/p' <<<"$client")
  printf '%-8s %8s %10s %12s %14s %8s   %s\n' "$proxy" "$streams" "${completed:-0}" "$hwm" "$rss_after" \
    "$(awk -v a="$after" -v b="$before" -v t="$TICK" 'BEGIN{printf "%.2f", (a-b)/t}')" "$client" | tee -a "$OUT/many-streams.txt"
  kill "$pid" "$up_pid" 2>/dev/null || true
  wait "$pid" "$up_pid" 2>/dev/null || true
}
if [ -z "${BENCH_CASES:-}" ] || grep -q many-streams <<<"$BENCH_CASES"; then
  echo
  printf '%-8s %8s %10s %12s %14s %8s\n' proxy streams completed "peak RSS MB" "RSS +10s MB" "CPU s" | tee "$OUT/many-streams.txt"
  many_streams_case sluice
  many_streams_case nginx
fi
# The stream path's own cost per event and its allocations, without sockets (fails the bench
# when the event pump allocates per event).
echo
echo "stream relay, per event (bench/relay_alloc.cpp):"
taskset -c "$PROXY_CPU" "$BUILD_DIR/sluice-relay-bench" | tee "$OUT/relay.txt"
echo
echo "machine: $(nproc) cores, $(awk -F: '/model name/{print $2; exit}' /proc/cpuinfo | sed 's/^ *//'), $(uname -r)"
echo "results: $OUT/results.txt (wrk output per case in $OUT/wrk-*.txt)"
