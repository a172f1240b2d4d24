#!/usr/bin/env bash
# End-to-end benchmark: a 1 GiB document uploaded to and downloaded from a release build of
# Portcullis over HTTPS on loopback, with the server's peak RSS, against nginx serving the same
# bytes as a static file with the same certificate and TLS versions. Run by hand:
#   ./bench/e2e.sh [MiB]        (default 1024)
#   DOC_KIND=text ./bench/e2e.sh  uploads a plain-text document (case notes with identifiers every
#                                 few KiB), which the upload inspection scans for identifiers; the
#                                 default, png, is an image (random bytes behind a PNG header),
#                                 which the allow-list recognises from its first bytes and nothing
#                                 scans
#   PORTCULLIS_BIN=PATH ./bench/e2e.sh  uses that server binary instead of building one (to compare
#                                       two builds back to back)
#   PERF_OUT=FILE ./bench/e2e.sh  also records a `perf` profile of the server during the download
#                                 (software clock, DWARF call graphs; view with `perf report -i FILE`);
#                                 with PERF_SCOPE=system, every process on the machine, no call graphs
# Installs nginx from Debian's packages if missing. Everything stays on 127.0.0.1.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
size_mib="${1:-1024}"

if ! command -v nginx >/dev/null 2>&1 && [[ ! -x /usr/sbin/nginx ]]; then
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

source "$repo/bench/common.sh"
pick_binary

work="$(mktemp -d)"
server_pid="" nginx_started=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    [[ -n "$nginx_started" ]] && "$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf" -s stop 2>/dev/null || true
    rm -rf -- "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

make_firm
start_server
c=(curl -sS --fail --cacert "$cert" ${CURL_EXTRA:-})
token="$(api_token)"
auth=(-H "authorization: Bearer $token")
matter="$("${c[@]}" "${auth[@]}" -H 'content-type: application/json' -d '{"reference":"B-1","title":"Bench"}' \
    "$base/api/v1/matters" | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')"

# An upload must be of a type on the firm's allow-list (checked from its content).
bytes=$((size_mib * 1024 * 1024))
case "${DOC_KIND:-png}" in
png)
    { printf '\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90\x77\x53\xde'
      head -c "$((bytes - 33))" /dev/urandom; } >"$work/doc.bin" ;;
text)
    python3 - "$bytes" "$work/doc.bin" <<'PY'
import sys
size, path = int(sys.argv[1]), sys.argv[2]
lines = [f"Meeting {i}: the client confirmed the completion date and the deposit of the sale.\n" for i in range(40)]
lines[0] = "Payment taken on card 4111 1111 1111 1111 for the invoice.\n"
lines[10] = "Refund to GB82 WEST 1234 5698 7654 32 agreed by the client.\n"
block = "".join(lines).encode()
with open(path, "wb") as f:
    for _ in range(size // len(block)):
        f.write(block)
    f.write(b"x" * (size % len(block)))
PY
    ;;
*) echo "DOC_KIND must be png or text" >&2; exit 2 ;;
esac

up="$("${c[@]}" "${auth[@]}" -X POST -T "$work/doc.bin" -H 'content-type: application/octet-stream' \
    -o "$work/up.json" -w '%{time_total}' "$base/api/v1/matters/$matter/documents?name=doc.${DOC_KIND:-png}")"
doc="$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["id"])' "$work/up.json")"
# Peak RSS so far (start and upload), to tell the two phases apart.
peak_kib() { awk '/VmHWM/{print $2}' "/proc/$server_pid/status"; }
rss_up_kib="$(peak_kib)"
perf_pid=""
if [[ -n "${PERF_OUT:-}" ]]; then
    if [[ "${PERF_SCOPE:-server}" == system ]]; then
        # Every process on the machine (the client and anything else competing for the cores).
        perf record -q -e cpu-clock -F 999 -a -o "$PERF_OUT" 2>"$work/perf.err" &
    else
        perf record -q -e cpu-clock -F 999 --call-graph dwarf,16384 -p "$server_pid" -o "$PERF_OUT" 2>"$work/perf.err" &
    fi
    perf_pid=$!
    sleep 1
fi
# CPU seconds (user + system) the server has used so far.
server_cpu() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$server_pid/stat"; }
cpu0="$(server_cpu)"
# Timed into /dev/null, as the nginx download below: both clients then do the same work.
down="$("${c[@]}" "${auth[@]}" -o /dev/null -w '%{time_total}' "$base/api/v1/documents/$doc/content")"
cpu1="$(server_cpu)"
if [[ -n "$perf_pid" ]]; then
    kill -INT "$perf_pid" && wait "$perf_pid" || true
fi
# Untimed: the same download into a file, compared with what was uploaded.
"${c[@]}" "${auth[@]}" -o "$work/back.bin" "$base/api/v1/documents/$doc/content"
cmp -s "$work/doc.bin" "$work/back.bin" || { echo "downloaded bytes differ" >&2; exit 1; }
rm -f -- "$work/back.bin"
rss_kib="$(peak_kib)"

# nginx with the same certificate, TLS 1.2 and 1.3, serving the same file.
port="$(free_port)"
mkdir -p "$work/nginx/logs" "$work/nginx/www"
cp "$work/doc.bin" "$work/nginx/www/doc.bin"
# nginx's workers run as an unprivileged user: let them reach the file (the keys stay private;
# the master process reads them).
chmod 755 "$work" "$work/nginx" "$work/nginx/www" && chmod 644 "$work/nginx/www/doc.bin"
cat >"$work/nginx/nginx.conf" <<CONF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 64; }
http {
    access_log off;
    sendfile on;
    client_body_temp_path $work/nginx/body; proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi; uwsgi_temp_path $work/nginx/uwsgi; scgi_temp_path $work/nginx/scgi;
    server {
        listen 127.0.0.1:$port ssl http2;
        ssl_certificate $cert;
        ssl_certificate_key $PORTCULLIS_DATA/tls/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        root $work/nginx/www;
    }
}
CONF
"$NGINX" -p "$work/nginx" -c "$work/nginx/nginx.conf"
nginx_started=1
sleep 0.5
ngx="$("${c[@]}" -o /dev/null -w '%{time_total}' "https://127.0.0.1:$port/doc.bin")"

mib_s() { python3 -c "print(f'{$size_mib / $1:.0f}')"; }
echo "document: $size_mib MiB (${DOC_KIND:-png}), HTTPS on loopback, curl as the client"
echo "portcullis upload   : ${up}s ($(mib_s "$up") MiB/s)"
echo "portcullis download : ${down}s ($(mib_s "$down") MiB/s), server CPU $(python3 -c "print(f'{$cpu1 - $cpu0:.2f}')")s"
echo "nginx download       : ${ngx}s ($(mib_s "$ngx") MiB/s)"
echo "portcullis peak RSS  : $((rss_kib / 1024)) MiB ($((rss_up_kib / 1024)) MiB by the end of the upload)"
