#!/usr/bin/env bash
# Request overhead of the protective layers: a release build of Portcullis serving
# `GET /api/v1/matters` (a signed-in API token, one firm, ten matters) to wrk over HTTPS on
# loopback, alternately with the rate limiters switched off (every `rate_limit_*_per_minute` 0)
# and switched on with budgets (a million a minute, the largest allowed) too large to be reached in a run (so every request pays for the checks but
# none is refused). The request filter, the source-block gate and the audit of the read run in
# both. Run by hand:
#   ./bench/requests.sh [seconds per run (default 10)] [rounds (default 3)]
#   PORTCULLIS_BIN=PATH  uses that server binary instead of building one
# Installs wrk from Debian's packages if missing. Everything stays on 127.0.0.1; each run is
# bounded by its duration.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
secs="${1:-10}"
rounds="${2:-3}"

if ! command -v wrk >/dev/null 2>&1; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends wrk
fi
if [[ -n "${PORTCULLIS_BIN:-}" ]]; then
    bin="$PORTCULLIS_BIN"
else
    cargo build --release -p portcullis >/dev/null
    bin="$repo/target/release/portcullis"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf -- "$work"
}
trap cleanup EXIT

export PORTCULLIS_DATA="$work/data"
printf '%s' 'benchmark password 123' >"$work/pw" && chmod 600 "$work/pw"
"$bin" tenant create --name bench --owner-email o@bench.example --owner-password-file "$work/pw" >/dev/null 2>&1

# Start the server with the limiters at `$1` per minute (0: off); sets base and cert.
start() {
    local limit="$1"
    PORTCULLIS_LISTEN=127.0.0.1:0 PORTCULLIS_LOG=warn \
        PORTCULLIS_RATE_LIMIT_IP_PER_MINUTE="$limit" PORTCULLIS_RATE_LIMIT_IP_BURST="$limit" \
        PORTCULLIS_RATE_LIMIT_ACCOUNT_PER_MINUTE="$limit" PORTCULLIS_RATE_LIMIT_ACCOUNT_BURST="$limit" \
        PORTCULLIS_RATE_LIMIT_TENANT_PER_MINUTE="$limit" PORTCULLIS_RATE_LIMIT_TENANT_BURST="$limit" \
        "$bin" serve >"$work/serve.out" 2>"$work/serve.err" &
    server_pid=$!
    for _ in $(seq 1 100); do grep -q '^Portcullis is serving' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
    base="$(sed -n 's/^Portcullis is serving \(https:\/\/[^ ]*\).*/\1/p' "$work/serve.out")"
    [[ -n "$base" ]] || { cat "$work/serve.err"; exit 1; }
}
stop() { kill "$server_pid" && wait "$server_pid" 2>/dev/null || true; server_pid=""; }

# One-time set-up through the API: a token and ten matters.
start 0
cert="$PORTCULLIS_DATA/tls/cert.pem"
c=(curl -sS --fail --cacert "$cert")
login="$("${c[@]}" -c "$work/jar" -H 'content-type: application/json' \
    -d '{"tenant":"bench","email":"o@bench.example","password":"benchmark password 123"}' "$base/api/v1/session")"
csrf="$(python3 -c 'import json,sys;print(json.loads(sys.argv[1])["csrf_token"])' "$login")"
token="$("${c[@]}" -b "$work/jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' \
    -d '{"name":"bench","scopes":["read","write"]}' "$base/api/v1/tokens" |
    python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])')"
for i in $(seq 1 10); do
    "${c[@]}" -H "authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"reference\":\"B-$i\",\"title\":\"Bench $i\"}" "$base/api/v1/matters" >/dev/null
done
stop

# wrk's requests per second, and the share of answers that were not 200.
run() {
    local out
    out="$(wrk -t2 -c16 -d"${secs}s" --timeout 10s -H "authorization: Bearer $token" "$base/api/v1/matters")"
    local rps non2xx
    rps="$(awk '/^Requests\/sec/{print $2}' <<<"$out")"
    non2xx="$(awk '/Non-2xx/{print $NF}' <<<"$out")"
    echo "$rps ${non2xx:-0} $(awk '/Latency/{print $2}' <<<"$out")"
}

echo "GET /api/v1/matters, wrk -t2 -c16 -d${secs}s, $rounds rounds alternating"
for r in $(seq 1 "$rounds"); do
    for mode in off on; do
        if [[ "$mode" == off ]]; then start 0; else start 1000000; fi
        read -r rps bad lat <<<"$(run)"
        stop
        echo "round $r limiters $mode: $rps req/s, mean latency $lat, non-200 answers $bad"
    done
done
