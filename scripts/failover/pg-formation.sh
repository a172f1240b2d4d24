# shellcheck shell=bash
#
# pg-formation.sh -- two-site pg_auto_failover formation on loopback, for
# Portcullis site-failover drills.
#
# Source this file (it is a library, not a program):
#
#     source scripts/failover/pg-formation.sh
#     formation_install
#     dir=$(mktemp -d /tmp/portcullis-pgaf.XXXXXX)
#     trap 'formation_stop "$dir"' EXIT
#     formation_start "$dir"          # exports PGF_* variables, see below
#     read -r primary port < <(formation_primary "$dir")
#     formation_kill_site "$dir" "$primary"
#     secs=$(formation_wait_promoted "$dir" site-b 60)
#
# Layout of DIR (everything the formation writes lives there; DIR is owned
# by the postgres system user because pg_autoctl refuses to run as root):
#
#     DIR/monitor DIR/site-a DIR/site-b   PGDATA of the three instances
#     DIR/xdg/{config,data}               pg_autoctl config + state files
#     DIR/run                             pg_autoctl pid files (XDG_RUNTIME_DIR)
#     DIR/backup                          pg_basebackup scratch (pg_autoctl's)
#     DIR/logs/NAME.log                   pg_autoctl output per node
#     DIR/pids/NAME.pid, NAME.pgid        recorded pg_autoctl supervisor pid
#                                         and its process group
#     DIR/pids/NAME-create.pgid           process group of a running
#                                         `pg_autoctl create` (transient)
#     DIR/pids/NAME.killed_at_us          when formation_kill_site ran
#     DIR/ports/NAME                      TCP port of each instance
#     DIR/app_password                    password of the portcullis role
#     DIR/formation.env                   `export PGF_...=...` lines
#     DIR/.pg-formation                   marker: formation_stop only ever
#                                         deletes a DIR that carries it
#
# Choices (see also the comments at each step):
#   * Every server listens on 127.0.0.1 only (--listen / --hostname 127.0.0.1).
#   * pg_auto_failover's own roles (autoctl_node, pgautofailover_replicator,
#     pgautofailover_monitor) use `--auth trust`: the servers are reachable
#     on loopback only, the whole formation lives in a throw-away directory,
#     and scram for those roles would need three extra passwords wired in at
#     the right moments (monitor URI, replication.password on every keeper
#     before the standby's pg_basebackup), i.e. moving parts unrelated to what
#     the drill exercises.  The *application* role `portcullis` does use
#     scram-sha-256 with a random password (HBA rule placed first in
#     pg_hba.conf), so the Rust service does real password auth as it would
#     in production.
#   * `--ssl-self-signed`: pg_autoctl generates a self-signed certificate
#     per instance (needs /usr/bin/openssl, which Debian has); internal
#     connections use sslmode=require.  The app URIs use sslmode=require too;
#     the app HBA rule is `host`, so a client built without TLS support can
#     still connect with sslmode=disable.
#   * Synchronous replication: with two data nodes that both have
#     replication-quorum=true, pg_auto_failover sets
#     synchronous_standby_names = 'ANY 1 (pgautofailover_standby_N)' on the
#     primary while the standby is healthy (number-sync-standbys stays at its
#     default 0 = "ANY 1 of the quorum standbys while one is up; the primary
#     goes to wait_primary and stops waiting when none is").  2.0 refuses
#     number-sync-standbys 1 with a single standby ("value 1 is not valid"):
#     that would need two quorum standbys.
#     formation_start verifies SHOW synchronous_standby_names and
#     pg_stat_replication.sync_state ('sync' or 'quorum') on the primary.
#
# All functions log to stderr; stdout carries only their documented output.
# The library sets no shell options itself and works under set -euo pipefail.

# ---------------------------------------------------------------------------
# Tunables (override before calling formation_start).
: "${PGF_PGBIN:=/usr/lib/postgresql/15/bin}"
: "${PGF_FORMATION:=default}"
: "${PGF_APP_USER:=portcullis}"
: "${PGF_APP_DB:=portcullis}"
: "${PGF_START_TIMEOUT:=120}"        # seconds, bound for each start-up wait
: "${PGF_SHARED_BUFFERS:=128MB}"     # pg_autoctl would size it at 25% of RAM
# Monitor failure-detection settings (defaults of pg_auto_failover 2.0 in
# brackets).  Applied with ALTER SYSTEM on the monitor, all are sighup.
: "${PGF_HEALTH_CHECK_PERIOD_MS:=1000}"             # [5000]
: "${PGF_HEALTH_CHECK_TIMEOUT_MS:=1000}"            # [5000]
: "${PGF_HEALTH_CHECK_MAX_RETRIES:=1}"              # [2]
: "${PGF_HEALTH_CHECK_RETRY_DELAY_MS:=500}"         # [2000]
: "${PGF_NODE_UNHEALTHY_TIMEOUT_MS:=4000}"          # [20000]
: "${PGF_PRIMARY_DEMOTE_TIMEOUT_MS:=6000}"          # [30000]
# Keeper side: a primary that can reach neither the monitor nor a standby
# demotes itself after this many seconds [20].  It must stay well below
# PGF_PRIMARY_DEMOTE_TIMEOUT_MS, otherwise a merely partitioned (not dead)
# old primary could still take writes when the standby gets promoted.
: "${PGF_NETWORK_PARTITION_TIMEOUT_S:=3}"

_PGF_NODES=(monitor site-a site-b)

# ---------------------------------------------------------------------------
# Small helpers (private).

_pgf_log() { printf '[pg-formation %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
_pgf_die() { _pgf_log "ERROR: $*"; return 1; }

# Microseconds since the epoch (bash >= 5 has EPOCHREALTIME).
_pgf_now_us() {
    if [[ -n "${EPOCHREALTIME:-}" ]]; then
        local t=${EPOCHREALTIME}
        printf '%s\n' "${t/./}"
    else
        date +%s%6N
    fi
}

# _pgf_secs_between START_US END_US -> "12.3"
_pgf_secs_between() {
    local d=$(( $2 - $1 ))
    printf '%d.%d\n' $(( d / 1000000 )) $(( (d % 1000000) / 100000 ))
}

_pgf_free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# True when PID exists and is not a zombie.  PID 1 in some sandboxes does not
# reap orphans, so `kill -0` alone would report dead processes as alive.
_pgf_alive() {
    local pid=${1:-}
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    local stat
    stat=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
    [[ -n "$stat" && "$stat" != Z* ]]
}

_pgf_cmdline() { { tr '\0' ' ' < "/proc/$1/cmdline"; } 2>/dev/null || true; }

# Processes of process group PGID that are still alive and belong to us
# (owned by postgres, command line mentions pg_autoctl or postgres).
_pgf_group_members() {
    local pgid=$1 pid grp stat user
    [[ "$pgid" =~ ^[0-9]+$ ]] || return 0
    while read -r pid grp stat user; do
        [[ "$grp" == "$pgid" && "$stat" != Z* && "$user" == postgres ]] || continue
        case "$(_pgf_cmdline "$pid")" in
            *pg_autoctl*|*postgres*) printf '%s\n' "$pid" ;;
        esac
    done < <(ps -eo pid=,pgid=,stat=,user= 2>/dev/null)
}

# Postmaster pid of PGDATA if that process is alive and really is the
# postmaster of that PGDATA (guards against a stale postmaster.pid whose pid
# got reused).
_pgf_postmaster_pid() {
    local pgdata=$1 pid
    [[ -r "$pgdata/postmaster.pid" ]] || return 1
    pid=$(head -n 1 "$pgdata/postmaster.pid" 2>/dev/null) || return 1
    _pgf_alive "$pid" || return 1
    case "$(_pgf_cmdline "$pid")" in
        *postgres*" -D $pgdata "*|*postgres*" -D $pgdata") printf '%s\n' "$pid" ;;
        *) return 1 ;;
    esac
}

# Run a command as the postgres system user with pg_autoctl's state kept in
# DIR.  setpriv (util-linux) is used rather than `runuser -u postgres`:
# runuser stays around as a parent process for the PAM session, so `$!` of a
# background runuser would not be pg_autoctl's pid; setpriv execs in place.
# `env -i` keeps root's PATH/PG* variables away from pg_autoctl (it probes
# every PATH entry for openssl and logs errors for unreadable ones).
_pgf_pg() {
    local dir=$1; shift
    local -a pre=()
    _pgf_as_pg_prefix "$dir" || return 1
    (cd "$dir" && exec "${pre[@]}" "$@")
}

# _pgf_pg_tracked LOG DIR TAG CMD... : run CMD as postgres in its own
# session, output appended to LOG, and wait for it.  While it runs, its
# process group is recorded in DIR/pids/TAG.pgid so that formation_stop (e.g.
# from an EXIT trap after Ctrl-C) can stop a half-finished `pg_autoctl
# create` and the Postgres it started.  Redirections are done inside the
# subshell, and `wait` is used, so the caller's traps run promptly and keep
# their own stdout/stderr.
_pgf_pg_tracked() {
    local log=$1 dir=$2 tag=$3; shift 3
    local -a pre=()
    _pgf_as_pg_prefix "$dir" || return 1
    ( cd "$dir" && exec setsid -w "${pre[@]}" "$@" >>"$log" 2>&1 </dev/null ) &
    local pid=$! rc=0
    printf '%s\n' "$pid" > "$dir/pids/$tag.pgid"
    wait "$pid" || rc=$?
    rm -f "$dir/pids/$tag.pgid"
    return "$rc"
}

# Fills the caller's array `pre` with the command prefix used by _pgf_pg.
_pgf_as_pg_prefix() {
    local dir=$1
    local -a envv=(
        env -i "HOME=$dir" "XDG_CONFIG_HOME=$dir/xdg/config" "XDG_DATA_HOME=$dir/xdg/data"
        "XDG_RUNTIME_DIR=$dir/run" "TMPDIR=$dir/run" "LANG=C.UTF-8"
        "PATH=$PGF_PGBIN:/usr/local/bin:/usr/bin:/bin"
    )
    if [[ "$(id -u)" -eq 0 ]]; then
        pre=(setpriv --reuid=postgres --regid=postgres --init-groups "${envv[@]}")
    elif [[ "$(id -un)" == postgres ]]; then
        pre=("${envv[@]}")
    else
        _pgf_die "must run as root or as the postgres user"
    fi
}

_pgf_port() { cat "$1/ports/$2" 2>/dev/null; }

# psql as the postgres superuser over TCP (trust on 127.0.0.1, from initdb).
_pgf_sql() {   # _pgf_sql PORT DB SQL
    PGCONNECT_TIMEOUT=3 psql -X -q -A -t -v ON_ERROR_STOP=1 \
        "host=127.0.0.1 port=$1 user=postgres dbname=$2 sslmode=require application_name=pg-formation" \
        -c "$3"
}

# psql as the application role, with its password, over TCP.
_pgf_app_sql() {   # _pgf_app_sql DIR NAME SQL
    local dir=$1 name=$2 port pw
    port=$(_pgf_port "$dir" "$name") || return 1
    pw=$(cat "$dir/app_password") || return 1
    PGPASSWORD=$pw PGCONNECT_TIMEOUT=3 psql -X -q -A -t -v ON_ERROR_STOP=1 \
        "host=127.0.0.1 port=$port user=$PGF_APP_USER dbname=$PGF_APP_DB sslmode=require application_name=pg-formation" \
        -c "$3"
}

_pgf_monitor_uri() {
    printf 'postgres://autoctl_node@127.0.0.1:%s/pg_auto_failover?sslmode=require\n' \
        "$(_pgf_port "$1" monitor)"
}

# One line per data node: "name port reported_state assigned_state health",
# straight from the monitor (the same function `pg_autoctl show state` uses).
_pgf_states() {
    local dir=$1
    PGCONNECT_TIMEOUT=3 psql -X -q -A -t -F ' ' -v ON_ERROR_STOP=1 "$(_pgf_monitor_uri "$dir")" \
        -c "select nodename, nodeport, current_group_state, assigned_group_state, health
              from pgautofailover.current_state('$PGF_FORMATION') order by node_id" 2>/dev/null
}

# _pgf_wait_for DESC TIMEOUT_S CMD... : poll CMD every 0.5 s until it succeeds.
_pgf_wait_for() {
    local desc=$1 timeout=$2; shift 2
    local deadline=$(( $(_pgf_now_us) + timeout * 1000000 ))
    while :; do
        if ("$@") >/dev/null 2>&1; then return 0; fi
        if (( $(_pgf_now_us) > deadline )); then
            _pgf_log "timed out after ${timeout}s waiting for: $desc"
            return 1
        fi
        sleep 0.5
    done
}

_pgf_node_in_state() {   # DIR NAME STATE... : reported == assigned == one of STATE
    local dir=$1 name=$2; shift 2
    local n p rep asg _h want
    while read -r n p rep asg _h; do
        [[ "$n" == "$name" && "$rep" == "$asg" ]] || continue
        for want in "$@"; do [[ "$rep" == "$want" ]] && return 0; done
    done < <(_pgf_states "$dir")
    return 1
}

_pgf_sync_ok() {   # DIR NAME : synchronous replication is active on NAME
    local dir=$1 name=$2 port ssn st
    port=$(_pgf_port "$dir" "$name")
    ssn=$(_pgf_sql "$port" postgres "show synchronous_standby_names") || return 1
    [[ -n "$ssn" ]] || return 1
    st=$(_pgf_sql "$port" postgres \
        "select count(*) from pg_stat_replication
          where state = 'streaming' and sync_state in ('sync','quorum')") || return 1
    [[ "$st" -ge 1 ]]
}

_pgf_dump_logs() {
    local dir=$1 f
    for f in "$dir"/logs/*.log; do
        [[ -r "$f" ]] || continue
        _pgf_log "---- last lines of $f"
        tail -n 25 "$f" >&2 || true
    done
}

# Start `pg_autoctl run` for NAME in its own session (so the supervisor, its
# service sub-processes and the postmaster share one process group that
# formation_kill_site / formation_stop can signal), record pid and pgid.
_pgf_run_node() {
    local dir=$1 name=$2 pgdata="$1/$2"
    local -a pre=()
    _pgf_as_pg_prefix "$dir" || return 1
    ( cd "$dir" && exec setsid "${pre[@]}" pg_autoctl run --pgdata "$pgdata" ) \
        >>"$dir/logs/$name.log" 2>&1 </dev/null &
    local launcher=$!
    # No "Killed" job notice from the caller's shell when the site is killed
    # later; bash still reaps the child.
    disown "$launcher" 2>/dev/null || true
    # The authoritative pid is the one pg_autoctl writes itself (if the caller
    # has job control on, setsid forks and $! is only the launcher).
    local pidfile="$dir/run/pg_autoctl$pgdata/pg_autoctl.pid" pid="" i
    for (( i = 0; i < 100; i++ )); do
        pid=$(head -n 1 "$pidfile" 2>/dev/null || true)
        if _pgf_alive "$pid"; then break; fi
        pid=""
        sleep 0.1
    done
    if [[ -z "$pid" ]]; then
        if _pgf_alive "$launcher"; then kill -TERM "$launcher" 2>/dev/null || true; fi
        _pgf_die "pg_autoctl run for $name did not start (see $dir/logs/$name.log)"
        return 1
    fi
    printf '%s\n' "$pid" > "$dir/pids/$name.pid"
    ps -o pgid= -p "$pid" | tr -d ' ' > "$dir/pids/$name.pgid"
    _pgf_log "$name: pg_autoctl run pid $pid (pgid $(cat "$dir/pids/$name.pgid"))"
}

# Prepend the application HBA rule (idempotent; only edits the file).
_pgf_app_hba() {
    local pgdata=$1 rule
    rule="host    $PGF_APP_DB    $PGF_APP_USER    127.0.0.1/32    scram-sha-256  # pg-formation: application role"
    grep -qF '# pg-formation: application role' "$pgdata/pg_hba.conf" && return 0
    { printf '%s\n' "$rule"; cat "$pgdata/pg_hba.conf"; } > "$pgdata/pg_hba.conf.pgf"
    chown postgres:postgres "$pgdata/pg_hba.conf.pgf" 2>/dev/null || true
    chmod 600 "$pgdata/pg_hba.conf.pgf"
    mv -f "$pgdata/pg_hba.conf.pgf" "$pgdata/pg_hba.conf"
}

# Settings applied to a freshly created data node before its first
# `pg_autoctl run` (Postgres is stopped then).
_pgf_prepare_node() {
    local dir=$1 name=$2 pgdata="$1/$2"
    # pg_autoctl computes shared_buffers as 25% of RAM (6 GB here) for every
    # instance; postgresql.auto.conf is read last and pg_autoctl keeps
    # unknown lines there when it runs ALTER SYSTEM itself.
    if ! grep -q '^shared_buffers' "$pgdata/postgresql.auto.conf" 2>/dev/null; then
        printf "shared_buffers = '%s'\n" "$PGF_SHARED_BUFFERS" >> "$pgdata/postgresql.auto.conf"
    fi
    _pgf_app_hba "$pgdata"
    _pgf_pg "$dir" pg_autoctl config set --pgdata "$pgdata" \
        timeout.network_partition_timeout "$PGF_NETWORK_PARTITION_TIMEOUT_S" >/dev/null
}

_pgf_create_data_node() {
    local dir=$1 name=$2 muri
    muri=$(_pgf_monitor_uri "$dir")
    _pgf_log "$name: pg_autoctl create postgres (port $(_pgf_port "$dir" "$name"))"
    if ! _pgf_pg_tracked "$dir/logs/$name.log" "$dir" "$name-create" timeout --kill-after=10 "$PGF_START_TIMEOUT" \
        pg_autoctl create postgres \
            --pgdata "$dir/$name" --pgport "$(_pgf_port "$dir" "$name")" \
            --pgctl "$PGF_PGBIN/pg_ctl" \
            --hostname 127.0.0.1 --listen 127.0.0.1 \
            --name "$name" --formation "$PGF_FORMATION" --monitor "$muri" \
            --dbname "$PGF_APP_DB" \
            --auth trust --ssl-self-signed \
            --replication-quorum true --candidate-priority 50; then
        _pgf_dump_logs "$dir"
        _pgf_die "pg_autoctl create postgres failed for $name"
        return 1
    fi
    _pgf_prepare_node "$dir" "$name"
    _pgf_run_node "$dir" "$name"
}

# ---------------------------------------------------------------------------
# Public API.

# formation_install: install pg_auto_failover 2.0 (CLI + PG 15 extension)
# from Debian if pg_autoctl or the extension is missing.
formation_install() {
    if command -v pg_autoctl >/dev/null 2>&1 &&
       [[ -e /usr/share/postgresql/15/extension/pgautofailover.control ]]; then
        _pgf_log "pg_autoctl already installed: $(pg_autoctl version 2>/dev/null | head -n 1)"
        return 0
    fi
    [[ "$(id -u)" -eq 0 ]] || { _pgf_die "formation_install needs root"; return 1; }
    _pgf_log "installing postgresql-15-auto-failover pg-auto-failover-cli"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q postgresql-15-auto-failover pg-auto-failover-cli >&2; then
        apt-get update -q >&2
        apt-get install -y -q postgresql-15-auto-failover pg-auto-failover-cli >&2
    fi
    command -v pg_autoctl >/dev/null 2>&1 || { _pgf_die "pg_autoctl still missing"; return 1; }
}

# formation_start DIR
#   DIR must not exist or be an empty directory.  Creates and runs a monitor
#   and the data nodes site-a (first primary) and site-b, waits (bounded by
#   PGF_START_TIMEOUT per step) for one primary + one secondary with
#   synchronous replication, creates role+database portcullis, and exports:
#     PGF_DIR PGF_MONITOR_URI PGF_MONITOR_PORT
#     PGF_SITE_A_PORT PGF_SITE_B_PORT PGF_SITE_A_HOSTPORT PGF_SITE_B_HOSTPORT
#     PGF_SITE_A_APP_URI PGF_SITE_B_APP_URI
#     PGF_APP_URI (both hosts, target_session_attrs=read-write)
#     PGF_APP_USER PGF_APP_DB PGF_APP_PASSWORD
#   The same assignments are printed on stdout (KEY=value) and written to
#   DIR/formation.env as `export` lines.
formation_start() {
    local dir=${1:?usage: formation_start DIR}
    local t0 name
    t0=$(_pgf_now_us)
    command -v pg_autoctl >/dev/null 2>&1 || { _pgf_die "pg_autoctl missing: run formation_install"; return 1; }
    command -v python3 >/dev/null 2>&1 || { _pgf_die "python3 is needed to pick free ports"; return 1; }
    [[ -x "$PGF_PGBIN/pg_ctl" ]] || { _pgf_die "no pg_ctl in $PGF_PGBIN"; return 1; }
    if [[ -e "$dir" ]]; then
        [[ -d "$dir" && -z "$(ls -A "$dir")" ]] || { _pgf_die "$dir exists and is not an empty directory"; return 1; }
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    : > "$dir/.pg-formation"
    mkdir -p "$dir/xdg/config" "$dir/xdg/data" "$dir/run" "$dir/logs" "$dir/pids" "$dir/ports"
    if [[ "$(id -u)" -eq 0 ]]; then chown -R postgres:postgres "$dir"; fi
    chmod 700 "$dir"
    if ! _pgf_pg "$dir" test -w "$dir"; then
        _pgf_die "postgres cannot write to $dir (is every parent directory traversable?)"
        return 1
    fi

    # Three distinct free loopback ports.
    local -a ports=()
    local p
    while (( ${#ports[@]} < 3 )); do
        p=$(_pgf_free_port)
        [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
    done
    printf '%s\n' "${ports[0]}" > "$dir/ports/monitor"
    printf '%s\n' "${ports[1]}" > "$dir/ports/site-a"
    printf '%s\n' "${ports[2]}" > "$dir/ports/site-b"

    # ---- monitor
    _pgf_log "monitor: pg_autoctl create monitor (port ${ports[0]})"
    if ! _pgf_pg_tracked "$dir/logs/monitor.log" "$dir" monitor-create timeout --kill-after=10 "$PGF_START_TIMEOUT" \
        pg_autoctl create monitor \
            --pgdata "$dir/monitor" --pgport "${ports[0]}" --pgctl "$PGF_PGBIN/pg_ctl" \
            --hostname 127.0.0.1 --listen 127.0.0.1 \
            --auth trust --ssl-self-signed; then
        _pgf_dump_logs "$dir"
        _pgf_die "pg_autoctl create monitor failed"
        return 1
    fi
    if ! grep -q '^shared_buffers' "$dir/monitor/postgresql.auto.conf" 2>/dev/null; then
        printf "shared_buffers = '%s'\n" "$PGF_SHARED_BUFFERS" >> "$dir/monitor/postgresql.auto.conf"
    fi
    _pgf_run_node "$dir" monitor || return 1
    _pgf_wait_for "monitor accepts connections" "$PGF_START_TIMEOUT" \
        _pgf_sql "${ports[0]}" pg_auto_failover "select 1" || { _pgf_dump_logs "$dir"; return 1; }

    # Faster failure detection / promotion than the defaults (20 s unhealthy
    # + 30 s demote timeout would make every drill take close to a minute).
    local kv
    for kv in \
        "health_check_period=${PGF_HEALTH_CHECK_PERIOD_MS}" \
        "health_check_timeout=${PGF_HEALTH_CHECK_TIMEOUT_MS}" \
        "health_check_max_retries=${PGF_HEALTH_CHECK_MAX_RETRIES}" \
        "health_check_retry_delay=${PGF_HEALTH_CHECK_RETRY_DELAY_MS}" \
        "node_considered_unhealthy_timeout=${PGF_NODE_UNHEALTHY_TIMEOUT_MS}" \
        "primary_demote_timeout=${PGF_PRIMARY_DEMOTE_TIMEOUT_MS}"; do
        _pgf_sql "${ports[0]}" pg_auto_failover \
            "alter system set pgautofailover.${kv%%=*} = '${kv#*=}'" || return 1
    done
    _pgf_sql "${ports[0]}" pg_auto_failover "select pg_reload_conf()" >/dev/null || return 1
    _pgf_log "monitor settings: $(_pgf_sql "${ports[0]}" pg_auto_failover \
        "select string_agg(replace(name,'pgautofailover.','') || '=' || setting || coalesce(unit,''), ' ' order by name)
           from pg_settings where name like 'pgautofailover.%'")"

    # ---- site-a: first node, becomes "single" then primary
    _pgf_create_data_node "$dir" site-a || return 1
    _pgf_wait_for "site-a to be single" "$PGF_START_TIMEOUT" \
        _pgf_node_in_state "$dir" site-a single primary wait_primary || { _pgf_dump_logs "$dir"; return 1; }
    # The monitor already knows "single" from the create step; wait for the
    # Postgres that `pg_autoctl run` (re)starts to accept connections.
    _pgf_wait_for "site-a accepts connections" "$PGF_START_TIMEOUT" \
        _pgf_sql "${ports[1]}" postgres "select 1" || { _pgf_dump_logs "$dir"; return 1; }

    # Application role + database ownership, on the primary (replicates).
    # The password is hex so it needs no escaping in URIs.
    local pw
    pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    ( umask 077; printf '%s\n' "$pw" > "$dir/app_password" )
    _pgf_sql "${ports[1]}" postgres "
        set password_encryption = 'scram-sha-256';
        create role $PGF_APP_USER login password '$pw';
        alter database $PGF_APP_DB owner to $PGF_APP_USER;" >/dev/null || return 1
    _pgf_sql "${ports[1]}" "$PGF_APP_DB" "select pg_reload_conf()" >/dev/null || return 1
    # Write-probe table used by formation_wait_promoted.
    _pgf_app_sql "$dir" site-a "
        create schema if not exists pgf;
        create table if not exists pgf.write_probe (
            id bigserial primary key, node text not null, at timestamptz not null default now());" \
        >/dev/null || return 1

    # ---- site-b: pg_basebackup from site-a, becomes secondary
    _pgf_create_data_node "$dir" site-b || return 1
    _pgf_wait_for "site-a primary + site-b secondary" "$PGF_START_TIMEOUT" \
        _pgf_two_nodes_ready "$dir" || { _pgf_dump_logs "$dir"; _pgf_states "$dir" >&2 || true; return 1; }

    # Both HBA files carry the app rule (site-b got it through the base
    # backup; ensure + reload anyway).
    for name in site-a site-b; do
        _pgf_app_hba "$dir/$name"
        _pgf_sql "$(_pgf_port "$dir" "$name")" postgres "select pg_reload_conf()" >/dev/null || return 1
    done

    # ---- synchronous replication check on the primary
    local prim pport
    read -r prim pport < <(formation_primary "$dir") || { _pgf_die "no primary"; return 1; }
    _pgf_wait_for "synchronous replication on $prim" 30 _pgf_sync_ok "$dir" "$prim" || return 1
    _pgf_log "$prim: synchronous_standby_names = '$(_pgf_sql "$pport" postgres "show synchronous_standby_names")'," \
        "synchronous_commit = $(_pgf_sql "$pport" postgres "show synchronous_commit")," \
        "pg_stat_replication: $(_pgf_sql "$pport" postgres \
            "select string_agg(application_name || ' ' || state || ' sync_state=' || sync_state, '; ') from pg_stat_replication")"

    # ---- app login works over TCP with the password, on both nodes
    for name in site-a site-b; do
        _pgf_wait_for "app login on $name" 30 _pgf_app_sql "$dir" "$name" "select 1" || return 1
    done

    # ---- exports
    local pa=${ports[1]} pb=${ports[2]}
    local -a vars=(
        "PGF_DIR=$dir"
        "PGF_MONITOR_URI=$(_pgf_monitor_uri "$dir")"
        "PGF_MONITOR_PORT=${ports[0]}"
        "PGF_SITE_A_PORT=$pa"
        "PGF_SITE_B_PORT=$pb"
        "PGF_SITE_A_HOSTPORT=127.0.0.1:$pa"
        "PGF_SITE_B_HOSTPORT=127.0.0.1:$pb"
        "PGF_SITE_A_APP_URI=postgresql://$PGF_APP_USER:$pw@127.0.0.1:$pa/$PGF_APP_DB?sslmode=require"
        "PGF_SITE_B_APP_URI=postgresql://$PGF_APP_USER:$pw@127.0.0.1:$pb/$PGF_APP_DB?sslmode=require"
        "PGF_APP_URI=postgresql://$PGF_APP_USER:$pw@127.0.0.1:$pa,127.0.0.1:$pb/$PGF_APP_DB?sslmode=require&target_session_attrs=read-write"
        "PGF_APP_USER=$PGF_APP_USER"
        "PGF_APP_DB=$PGF_APP_DB"
        "PGF_APP_PASSWORD=$pw"
    )
    : > "$dir/formation.env"
    local v
    for v in "${vars[@]}"; do
        export "${v?}"
        printf 'export %s=%q\n' "${v%%=*}" "${v#*=}" >> "$dir/formation.env"
        printf '%s\n' "$v"
    done
    chmod 644 "$dir/formation.env"
    _pgf_log "formation up in $(_pgf_secs_between "$t0" "$(_pgf_now_us)") s"
    formation_show_state "$dir" >&2 || true
}

_pgf_two_nodes_ready() {
    local dir=$1 n p rep asg _h prim=0 sec=0
    while read -r n p rep asg _h; do
        [[ "$rep" == "$asg" ]] || continue
        [[ "$rep" == primary ]] && prim=$(( prim + 1 ))
        [[ "$rep" == secondary ]] && sec=$(( sec + 1 ))
    done < <(_pgf_states "$dir")
    (( prim == 1 && sec == 1 ))
}

# formation_primary DIR
#   Prints "NAME PORT" (e.g. "site-a 41234") of the node the monitor has
#   assigned the primary role to and that has reached it (single, primary or
#   wait_primary).  Returns 1, printing nothing, while there is none (e.g.
#   in the middle of a failover).
formation_primary() {
    local dir=${1:?usage: formation_primary DIR}
    local n p rep asg _h
    while read -r n p rep asg _h; do
        [[ "$rep" == "$asg" ]] || continue
        case "$rep" in
            single|primary|wait_primary) printf '%s %s\n' "$n" "$p"; return 0 ;;
        esac
    done < <(_pgf_states "$dir")
    return 1
}

# formation_sync_status DIR
#   Prints, for the current primary, one line
#     "NAME synchronous_standby_names='...' synchronous_commit=on standby=APP:STATE:SYNC_STATE[,...]"
#   (queried as superuser, pg_stat_replication hides those columns from the
#   application role).  Returns 1 if there is no primary or replication is
#   not synchronous right now.
formation_sync_status() {
    local dir=${1:?usage: formation_sync_status DIR} prim port ssn sc reps
    read -r prim port < <(formation_primary "$dir") || { _pgf_die "no primary"; return 1; }
    ssn=$(_pgf_sql "$port" postgres "show synchronous_standby_names") || return 1
    sc=$(_pgf_sql "$port" postgres "show synchronous_commit") || return 1
    reps=$(_pgf_sql "$port" postgres "select coalesce(string_agg(application_name || ':' || state || ':' || sync_state, ',' order by application_name), 'none')
                                        from pg_stat_replication") || return 1
    printf "%s synchronous_standby_names='%s' synchronous_commit=%s standby=%s\n" "$prim" "$ssn" "$sc" "$reps"
    _pgf_sync_ok "$dir" "$prim"
}

# formation_show_state DIR
#   Prints `pg_autoctl show state` of the formation (human-readable table).
formation_show_state() {
    local dir=${1:?usage: formation_show_state DIR}
    _pgf_pg "$dir" pg_autoctl show state --pgdata "$dir/monitor"
}

# formation_kill_site DIR NAME
#   Simulates the loss of site NAME: SIGKILL to its pg_autoctl supervisor
#   (recorded pid), to every process of that supervisor's process group (its
#   "start/stop postgres" and "node active" services -- if those survive they
#   restart Postgres, so the site would not really be down), and to the
#   postmaster (first line of PGDATA/postmaster.pid).  Waits (10 s max) until
#   the postmaster is gone and the port refuses connections, and records the
#   kill time in DIR/pids/NAME.killed_at_us.  Prints nothing on stdout.
formation_kill_site() {
    local dir=${1:?usage: formation_kill_site DIR NAME} name=${2:?usage: formation_kill_site DIR NAME}
    local pgdata="$dir/$name" keeper pgid pm port
    [[ -f "$dir/pids/$name.pid" ]] || { _pgf_die "no recorded pid for $name in $dir"; return 1; }
    keeper=$(cat "$dir/pids/$name.pid")
    pgid=$(cat "$dir/pids/$name.pgid" 2>/dev/null || true)
    pm=$(_pgf_postmaster_pid "$pgdata" || true)
    port=$(_pgf_port "$dir" "$name")
    local -a victims=()
    if _pgf_alive "$keeper" && [[ "$(_pgf_cmdline "$keeper")" == *pg_autoctl* ]]; then
        victims+=("$keeper")
    fi
    [[ -n "$pm" ]] && victims+=("$pm")
    local m
    while read -r m; do
        [[ -n "$m" && " ${victims[*]} " != *" $m "* ]] && victims+=("$m")
    done < <(_pgf_group_members "$pgid")
    if (( ${#victims[@]} == 0 )); then
        _pgf_die "$name: nothing alive to kill"
        return 1
    fi
    _pgf_log "$name: kill -9 keeper=$keeper postmaster=${pm:-none} group=${pgid:-none} -> pids ${victims[*]}"
    _pgf_now_us > "$dir/pids/$name.killed_at_us"
    kill -KILL "${victims[@]}" 2>/dev/null || true
    local i
    for (( i = 0; i < 100; i++ )); do
        if ! _pgf_alive "$pm" && [[ -z "$(_pgf_group_members "$pgid")" ]] &&
           ! "$PGF_PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 >/dev/null 2>&1; then
            _pgf_log "$name: down (port $port closed)"
            return 0
        fi
        sleep 0.1
    done
    _pgf_die "$name: still alive 10 s after kill -9"
}

# formation_wait_promoted DIR NAME TIMEOUT
#   Waits at most TIMEOUT seconds until the monitor shows NAME as primary
#   (wait_primary/primary/single, reported == assigned), NAME answers
#   pg_is_in_recovery() = false, and an INSERT by the application role into
#   pgf.write_probe commits.  Prints one number on stdout: seconds from the
#   last formation_kill_site on DIR to that successful write (from the start
#   of this call if no kill was recorded).  Returns 1 on timeout.
formation_wait_promoted() {
    local dir=${1:?usage: formation_wait_promoted DIR NAME TIMEOUT} name=${2:?} timeout=${3:-60}
    local t0 since deadline f k
    t0=$(_pgf_now_us)
    since=0
    for f in "$dir"/pids/*.killed_at_us; do
        [[ -r "$f" ]] || continue
        k=$(cat "$f")
        [[ "$k" =~ ^[0-9]+$ ]] && (( k > since )) && since=$k
    done
    (( since > 0 )) || since=$t0
    deadline=$(( t0 + timeout * 1000000 ))
    local seen_state="" last="" rec
    while :; do
        if _pgf_node_in_state "$dir" "$name" wait_primary primary single; then
            [[ -n "$seen_state" ]] || { seen_state=1; _pgf_log "$name: monitor state is primary-like"; }
            rec=$(_pgf_app_sql "$dir" "$name" "select pg_is_in_recovery()" 2>/dev/null || true)
            if [[ "$rec" == f ]] &&
               timeout 5 env PGPASSWORD="$(cat "$dir/app_password")" PGCONNECT_TIMEOUT=3 \
                   psql -X -q -A -t -v ON_ERROR_STOP=1 \
                   "host=127.0.0.1 port=$(_pgf_port "$dir" "$name") user=$PGF_APP_USER dbname=$PGF_APP_DB sslmode=require" \
                   -c "insert into pgf.write_probe(node) values ('$name')" >/dev/null 2>&1; then
                local done_us; done_us=$(_pgf_now_us)
                _pgf_log "$name accepts writes; waited $(_pgf_secs_between "$t0" "$done_us") s in this call"
                _pgf_secs_between "$since" "$done_us"
                return 0
            fi
        fi
        local now_states
        now_states=$(_pgf_states "$dir" | awk '{printf "%s:%s/%s ", $1, $3, $4}' || true)
        if [[ "$now_states" != "$last" ]]; then
            _pgf_log "states: $now_states"
            last=$now_states
        fi
        if (( $(_pgf_now_us) > deadline )); then
            _pgf_die "$name not promoted within ${timeout}s"
            return 1
        fi
        sleep 0.2
    done
}

# formation_stop DIR
#   Stops everything formation_start started in DIR (recorded pids only):
#   SIGTERM to each pg_autoctl supervisor (which stops its Postgres), then
#   SIGKILL to whatever of the recorded process groups / postmasters is left
#   after 20 s, then removes DIR.  Idempotent, never fails (for EXIT traps);
#   only deletes DIR if it carries the .pg-formation marker.
formation_stop() {
    local dir=${1:-}
    [[ -n "$dir" && -d "$dir" && -f "$dir/.pg-formation" ]] || return 0
    local name pid pgid pm i
    local -a order=(site-b site-a monitor)
    # Interrupted `pg_autoctl create` runs, if any (SIGTERM: they stop their
    # Postgres and exit).
    for name in "${order[@]}"; do
        pgid=$(cat "$dir/pids/$name-create.pgid" 2>/dev/null || true)
        local -a cr=()
        mapfile -t cr < <(_pgf_group_members "$pgid")
        if (( ${#cr[@]} > 0 )); then
            _pgf_log "stopping interrupted create of $name (pids ${cr[*]})"
            kill -TERM "${cr[@]}" 2>/dev/null || true
        fi
    done
    for name in "${order[@]}"; do
        pid=$(cat "$dir/pids/$name.pid" 2>/dev/null || true)
        if _pgf_alive "$pid" && [[ "$(_pgf_cmdline "$pid")" == *pg_autoctl* ]]; then
            _pgf_log "stopping $name (pg_autoctl pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for (( i = 0; i < 200; i++ )); do
        local busy=0
        for name in "${order[@]}" "${order[@]/%/-create}"; do
            pgid=$(cat "$dir/pids/$name.pgid" 2>/dev/null || true)
            [[ -n "$(_pgf_group_members "$pgid")" ]] && busy=1
            _pgf_postmaster_pid "$dir/$name" >/dev/null 2>&1 && busy=1
        done
        (( busy == 0 )) && break
        sleep 0.1
    done
    for name in "${order[@]}"; do
        local -a left=()
        mapfile -t left < <(
            _pgf_group_members "$(cat "$dir/pids/$name.pgid" 2>/dev/null || true)"
            _pgf_group_members "$(cat "$dir/pids/$name-create.pgid" 2>/dev/null || true)")
        pm=$(_pgf_postmaster_pid "$dir/$name" 2>/dev/null || true)
        [[ -n "$pm" ]] && left+=("$pm")
        if (( ${#left[@]} > 0 )); then
            _pgf_log "$name: still running after SIGTERM, kill -9 ${left[*]}"
            kill -KILL "${left[@]}" 2>/dev/null || true
        fi
    done
    # Backends / auxiliary processes leave within a moment of postmaster death.
    for (( i = 0; i < 50; i++ )); do
        local open=0
        for name in "${order[@]}"; do
            local port; port=$(_pgf_port "$dir" "$name" || true)
            [[ -n "$port" ]] && "$PGF_PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" -t 1 >/dev/null 2>&1 && open=1
        done
        (( open == 0 )) && break
        sleep 0.1
    done
    rm -rf -- "$dir" 2>/dev/null || true
    _pgf_log "formation in $dir stopped and removed"
    return 0
}
