#!/usr/bin/env bash
# demo.sh -- PostgreSQL half of the Portcullis site-failover drill.
#
# Builds a two-site pg_auto_failover formation on loopback (monitor, site-a,
# site-b, synchronous replication), writes rows 1..100 on the primary with
# synchronous commit, kills the primary site (keeper + postmaster, kill -9),
# waits for pg_auto_failover to promote the other site, and checks that all
# 100 rows survived.  Cleans up everything it started on exit.
#
# Usage (as root):  bash scripts/failover/demo.sh
# Env: PGF_PROMOTE_TIMEOUT (default 60 s), plus the PGF_* tunables of
# pg-formation.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=pg-formation.sh
source "$here/pg-formation.sh"

say() { printf '\n==> %s\n' "$*" >&2; }
demo_t0=$(_pgf_now_us)

say "install"
formation_install

dir=$(mktemp -d "${TMPDIR:-/tmp}/portcullis-pgaf.XXXXXX")
trap 'formation_stop "$dir"' EXIT
trap 'exit 130' INT TERM

say "start formation in $dir"
formation_start "$dir" >/dev/null   # KEY=value lines also exported + in $dir/formation.env
printf '%s\n' "monitor:  $PGF_MONITOR_URI" "site-a:   $PGF_SITE_A_HOSTPORT" "site-b:   $PGF_SITE_B_HOSTPORT" >&2

read -r primary primary_port < <(formation_primary "$dir")
case "$primary" in
    site-a) standby=site-b; primary_uri=$PGF_SITE_A_APP_URI ;;
    site-b) standby=site-a; primary_uri=$PGF_SITE_B_APP_URI ;;
    *) echo "unexpected primary '$primary'" >&2; exit 1 ;;
esac
case "$standby" in
    site-a) standby_uri=$PGF_SITE_A_APP_URI ;;
    site-b) standby_uri=$PGF_SITE_B_APP_URI ;;
esac
say "primary is $primary (port $primary_port), standby is $standby"

app_psql() { PGCONNECT_TIMEOUT=3 psql -X -q -A -t -v ON_ERROR_STOP=1 "$1" "${@:2}"; }

say "create table and insert rows 1..100 on $primary (synchronous_commit=on, one commit per row)"
app_psql "$primary_uri" -c "create table drill_rows (id int primary key, note text not null,
                                                     at timestamptz not null default now())"
{
    echo "set synchronous_commit = on;"
    echo "select 'synchronous_commit=' || current_setting('synchronous_commit')
              || ' synchronous_standby_names=' || current_setting('synchronous_standby_names');"
    for i in $(seq 1 100); do
        echo "insert into drill_rows(id, note) values ($i, 'row $i');"
    done
    echo "select 'rows on primary: ' || count(*) from drill_rows;"
} | timeout 60 psql -X -q -A -t -v ON_ERROR_STOP=1 "$primary_uri" >&2

say "replication state on $primary just before the kill"
formation_sync_status "$dir" >&2
# Every commit above waited for the standby (synchronous_commit=on with a
# synchronous standby), so the standby has flushed all 100 rows' WAL.

say "kill site $primary (pg_autoctl keeper + postmaster, SIGKILL)"
formation_kill_site "$dir" "$primary"

say "wait for pg_auto_failover to promote $standby"
promote_secs=$(formation_wait_promoted "$dir" "$standby" "${PGF_PROMOTE_TIMEOUT:-60}")

say "check data on the new primary $standby"
count=$(app_psql "$standby_uri" -c "select count(*) from drill_rows")
missing=$(app_psql "$standby_uri" -c "select count(*) from generate_series(1,100) g
                                       where not exists (select 1 from drill_rows where id = g)")
app_psql "$standby_uri" -c "select 'pg_is_in_recovery=' || pg_is_in_recovery()" >&2
formation_show_state "$dir" >&2 || true

if [[ "$count" != 100 || "$missing" != 0 ]]; then
    echo "FAIL: new primary $standby has $count rows ($missing of 1..100 missing)" >&2
    exit 1
fi

total=$(_pgf_secs_between "$demo_t0" "$(_pgf_now_us)")
echo "PASS: $standby promoted by pg_auto_failover ${promote_secs}s after site $primary was killed; 100/100 rows present (demo so far ${total}s)"
