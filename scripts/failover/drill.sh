#!/usr/bin/env bash
# The site-failover drill, on loopback:
#
#   site A: node A1 (portcullis serve) and the PostgreSQL primary
#   site B: node B1 (portcullis serve) and a synchronous standby
#   pg_auto_failover's monitor decides promotions (Debian's pg-auto-failover-cli)
#
# Both nodes get `database_url` listing both database hosts and follow the primary among
# them. Clients write continuously through A1 and B1 (scripts/failover/client.py); after a few
# seconds site A is killed with kill -9 (A1, the keeper and the postmaster); pg_auto_failover
# promotes site B's standby; B1 keeps serving once it has followed. The drill then checks that
# every write acknowledged before, during and after the failure is stored, and prints how long
# writes were interrupted. Exits non-zero if any acknowledged write is missing.
#
# Usage (as root, from anywhere):  scripts/failover/drill.sh
# Needs: cargo (it builds portcullis), python3, and apt for the pg_auto_failover packages.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=pg-formation.sh
source "$here/pg-formation.sh"

say() { printf '\n==> [failover drill] %s\n' "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-drill.XXXXXX")
# The formation runs as the postgres user: it must be able to pass through this directory.
chmod 0711 "$work"
form="$work/formation"
cleanup() {
    local f
    for f in "$work"/*.pid; do
        [[ -e "$f" ]] && kill -9 "$(cat "$f")" 2>/dev/null || true
    done
    formation_stop "$form"
    rm -rf -- "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building portcullis"
cargo build --quiet --manifest-path "$repo/Cargo.toml" -p portcullis
bin="$repo/target/debug/portcullis"

say "installing and starting the pg_auto_failover formation"
formation_install
formation_start "$form" >/dev/null
read -r primary _ < <(formation_primary "$form")
[[ "$primary" == site-a ]] || { echo "site-a is not the first primary ($primary)" >&2; exit 1; }

password="correct horse battery staple"
printf '%s' "$password" > "$work/password"
chmod 600 "$work/password"
mkdir -p "$work/a1" "$work/b1"

# Both nodes: every database host, the same keys (A1's), no per-source limits (one client
# sends all the load), no drain (the drill kills, it does not stop).
node_vars=(
    PORTCULLIS_DATABASE_URL="$PGF_APP_URI"
    PORTCULLIS_MASTER_KEY_FILE="$work/a1/master.key"
    PORTCULLIS_AUDIT_SIGNING_KEY_FILE="$work/a1/audit-signing.key"
    PORTCULLIS_LISTEN=127.0.0.1:0
    PORTCULLIS_RATE_LIMIT_IP_PER_MINUTE=0
    PORTCULLIS_RATE_LIMIT_ACCOUNT_PER_MINUTE=0
    PORTCULLIS_RATE_LIMIT_TENANT_PER_MINUTE=0
    PORTCULLIS_RATE_LIMIT_SIGN_IN_PER_MINUTE=0
    PORTCULLIS_BACKUP_ENABLED=false
    PORTCULLIS_DRAIN_SECS=0
    PORTCULLIS_LOG=warn
)

say "creating the firm"
env "${node_vars[@]}" PORTCULLIS_DATA="$work/a1" "$bin" tenant create --name acme \
    --owner-email o@acme.example --owner-password-file "$work/password" >/dev/null

# Start a node (its pid in $work/NAME.pid, for the cleanup); prints its port once it serves
# (bounded). Called in $(...): the pid file, not a variable, carries the pid out.
start_node() {
    local name="$1" out="$work/$1.out"
    # `env` execs the server, so $! is the server's own pid (what kill -9 must hit).
    env "${node_vars[@]}" PORTCULLIS_DATA="$work/$name" "$bin" serve >"$out" 2>"$work/$name.err" &
    echo "$!" > "$work/$name.pid"
    for _ in $(seq 1 300); do
        if port=$(grep -o 'Portcullis is serving https://127.0.0.1:[0-9]*' "$out" 2>/dev/null | grep -o '[0-9]*$'); then
            echo "$port"
            return 0
        fi
        sleep 0.1
    done
    echo "$name did not start; its log:" >&2
    cat "$work/$name.err" >&2
    return 1
}

say "starting node A1 (site A) and node B1 (site B)"
a1_port=$(start_node a1)
b1_port=$(start_node b1)

say "writing through both nodes"
python3 "$here/client.py" \
    --a "https://127.0.0.1:$a1_port" --a-cert "$work/a1/tls/cert.pem" \
    --b "https://127.0.0.1:$b1_port" --b-cert "$work/b1/tls/cert.pem" \
    --password-file "$work/password" --seconds "${DRILL_SECONDS:-45}" \
    --killed-at-file "$work/killed_at" --ready-file "$work/writing" &
client=$!
for _ in $(seq 1 300); do
    [[ -e "$work/writing" ]] && break
    sleep 0.1
done
sleep 5

say "killing site A: node A1, its keeper and its PostgreSQL (kill -9)"
python3 -c 'import time; print(time.time())' > "$work/killed_at"
a1_pid=$(cat "$work/a1.pid")
kill -9 "$a1_pid"
formation_kill_site "$form" site-a
for _ in $(seq 1 50); do
    kill -0 "$a1_pid" 2>/dev/null || break
    sleep 0.1
done
! kill -0 "$a1_pid" 2>/dev/null || { echo "node A1 survived kill -9" >&2; exit 1; }

say "waiting for pg_auto_failover to promote site B"
promoted=$(formation_wait_promoted "$form" site-b "${DRILL_PROMOTE_TIMEOUT:-90}")
say "site B promoted: ${promoted} s from the kill to its first committed write"

status=0
wait "$client" || status=$?
if ((status == 0)); then
    say "passed: every acknowledged write is stored"
else
    say "FAILED (client exit $status); node B1's log:"
    tail -n 40 "$work/b1.err" >&2
fi
exit "$status"
