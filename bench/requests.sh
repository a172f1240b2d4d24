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
source "$repo/bench/common.sh"
pick_binary

work="$(mktemp -d)"
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf -- "$work"
}
trap cleanup EXIT

make_firm

# Start the server with the limiters at `$1` per minute (0: off).
start() {
    local limit="$1"
    PORTCULLIS_RATE_LIMIT_IP_PER_MINUTE="$limit" PORTCULLIS_RATE_LIMIT_IP_BURST="$limit" \
        PORTCULLIS_RATE_LIMIT_ACCOUNT_PER_MINUTE="$limit" PORTCULLIS_RATE_LIMIT_ACCOUNT_BURST="$limit" \
        PORTCULLIS_RATE_LIMIT_TENANT_PER_MINUTE="$limit" PORTCULLIS_RATE_LIMIT_TENANT_BURST="$limit" \
        start_server
}
stop() { kill "$server_pid" && wait "$server_pid" 2>/dev/null || true; server_pid=""; }

# One-time set-up through the API: a token and ten matters.
start 0
c=(curl -sS --fail --cacert "$cert")
token="$(api_token)"
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
