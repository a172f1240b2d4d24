# Shared by the benchmark scripts (sourced, not run): the server binary, a firm, starting the
# server on a free loopback port, and an API token. Expects `repo` and `work` to be set.

# The server binary: PORTCULLIS_BIN, or a release build made now.
pick_binary() {
    if [[ -n "${PORTCULLIS_BIN:-}" ]]; then
        bin="$PORTCULLIS_BIN"
    else
        cargo build --release -p portcullis >/dev/null
        bin="$repo/target/release/portcullis"
    fi
}

# A data directory with one firm, `bench`, whose owner is o@bench.example.
make_firm() {
    export PORTCULLIS_DATA="$work/data"
    printf '%s' 'benchmark password 123' >"$work/pw" && chmod 600 "$work/pw"
    "$bin" tenant create --name bench --owner-email o@bench.example --owner-password-file "$work/pw" >/dev/null 2>&1
}

# Start `portcullis serve` on 127.0.0.1:0 (extra settings come from the caller's environment);
# sets server_pid, base and cert.
start_server() {
    PORTCULLIS_LISTEN=127.0.0.1:0 PORTCULLIS_LOG=warn "$bin" serve >"$work/serve.out" 2>"$work/serve.err" &
    server_pid=$!
    for _ in $(seq 1 100); do grep -q '^Portcullis is serving' "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
    base="$(sed -n 's/^Portcullis is serving \(https:\/\/[^ ]*\).*/\1/p' "$work/serve.out")"
    [[ -n "$base" ]] || { cat "$work/serve.err"; exit 1; }
    cert="$PORTCULLIS_DATA/tls/cert.pem"
}

# Sign in as the owner and make an API token (read and write); prints the token.
api_token() {
    local c=(curl -sS --fail --cacert "$cert" ${CURL_EXTRA:-}) login csrf
    login="$("${c[@]}" -c "$work/jar" -H 'content-type: application/json' \
        -d '{"tenant":"bench","email":"o@bench.example","password":"benchmark password 123"}' "$base/api/v1/session")"
    csrf="$(python3 -c 'import json,sys;print(json.loads(sys.argv[1])["csrf_token"])' "$login")"
    "${c[@]}" -b "$work/jar" -H "x-csrf-token: $csrf" -H 'content-type: application/json' \
        -d '{"name":"bench","scopes":["read","write"]}' "$base/api/v1/tokens" |
        python3 -c 'import json,sys;print(json.load(sys.stdin)["token"])'
}
