#!/bin/bash
# `make bench`: what Tollgate costs on the request path.
#
# The same location (a 1 KiB static file) under variants of one nginx
# configuration (bench/nginx.conf.in):
#   plain          nothing limits
#   limit_req      stock limit_req by client address, with a rate that
#                  admits every request
#   limit_req_app  the same keyed by the X-App-Id header, as Tollgate is
#   tollgate       Tollgate standalone, with a quota that admits every
#                  request
#   tollgate_redis the same in distributed mode: quotas in a local Redis,
#                  requests paid from the gateway's lease
#
# 1. Throughput and latency: wrk on loopback, BENCH_RUNS runs of
#    BENCH_DURATION seconds per variant (variants interleaved, so drift
#    in the machine's load spreads over all), median reported.
# 2. Instructions per request: nginx as one process under callgrind,
#    driven by exactly BENCH_REQUESTS requests; (Ir of that run - Ir of
#    an idle start and stop) / requests, BENCH_REPEATS times.
#
# Writes bench/results/*.json and regenerates docs/benchmarks.md
# (bench/report.py).  BENCH_VARIANTS narrows the variants measured.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/deploy/nginx.sh"

export BENCH_DURATION=${BENCH_DURATION:-10}
export BENCH_RUNS=${BENCH_RUNS:-3}
export BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-50}
export BENCH_THREADS=${BENCH_THREADS:-1}
export BENCH_REQUESTS=${BENCH_REQUESTS:-20000}
export BENCH_REPEATS=${BENCH_REPEATS:-3}
export BENCH_VARIANTS=${BENCH_VARIANTS:-plain limit_req limit_req_app \
tollgate tollgate_redis}

# What was measured, for the report: the commit, and whether the module's
# sources differed from it.  Set it when TOLLGATE_MODULE comes from
# elsewhere (for example a build of a clean `git archive HEAD`).
if [ -z "${BENCH_COMMIT:-}" ]; then
    BENCH_COMMIT=$(git -C "$root" rev-parse --short HEAD 2>/dev/null ||
                   echo unknown)
    if [ -n "$(git -C "$root" status --porcelain -- nginx core 2>/dev/null)" ]
    then
        BENCH_COMMIT="$BENCH_COMMIT with uncommitted changes to nginx/ or core/"
    fi
fi
export BENCH_COMMIT

# TOLLGATE_MODULE: a module built elsewhere (make BUILD=... module)
module=${TOLLGATE_MODULE:-$root/build/ngx_http_tollgate_module.so}

"$root/scripts/deps.sh" bench

case " $BENCH_VARIANTS " in
    *" tollgate"*) [ -f "$module" ] || make -C "$root" module ;;
esac

work=$(mktemp -d /tmp/tollgate-bench.XXXXXX)
pids=""

cleanup() {
    local pid

    trap - EXIT INT TERM
    for pid in $pids; do
        tg_stop_pid "$pid"
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# untrack PID: drops PID, and only that exact PID, from what cleanup stops.
untrack() {
    local p kept=""

    for p in $pids; do
        if [ "$p" != "$1" ]; then
            kept="$kept $p"
        fi
    done
    pids=$kept
}


# run_tracked CMD...: runs CMD in the background and waits for it, so a
# Ctrl-C runs our trap at once (bash defers traps while a foreground
# child runs) and cleanup can stop CMD by its PID.
run_tracked() {
    local pid rc=0

    "$@" &
    pid=$!
    pids="$pids $pid"
    wait "$pid" || rc=$?
    untrack "$pid"
    return "$rc"
}


# start_server WHAT PORT LOG SECONDS CMD...: starts CMD in the background,
# remembered for cleanup, and waits until it listens on PORT; on failure
# shows LOG and stops the benchmark.  Sets server_pid.
start_server() {
    local what=$1 port=$2 log=$3 seconds=$4

    shift 4
    "$@" &
    server_pid=$!
    pids="$pids $server_pid"

    if ! tg_wait_port "$port" "$server_pid" "$seconds"; then
        echo "bench: $what did not start:" >&2
        cat "$log" >&2 || true
        exit 1
    fi
}


# variant_lines VARIANT MODE: sets the directives that make up a variant.
# The $names in single quotes are nginx variables, not the shell's.
# shellcheck disable=SC2016
variant_lines() {
    local redis_timeout=""

    load="" limit_http="" limit_location="" metrics="return 404;"
    if [ "$2" = callgrind ]; then
        redis_timeout=" timeout=5s"
    fi

    case $1 in
    plain)
        ;;
    limit_req)
        # 1e6 r/s with a burst as large never delays nor rejects at
        # loopback speed, yet runs all of limit_req's accounting
        limit_http='limit_req_zone $binary_remote_addr zone=bench:1m rate=1000000r/s;'
        limit_location='limit_req zone=bench burst=1000000 nodelay;'
        ;;
    limit_req_app)
        # the same, keyed like Tollgate by a request header
        limit_http='limit_req_zone $http_x_app_id zone=bench:1m rate=1000000r/s;'
        limit_location='limit_req zone=bench burst=1000000 nodelay;'
        ;;
    tollgate|tollgate_redis)
        # 1e6 tokens/s for an application whose GET costs 2 tokens; with
        # Redis the same declarations seed its keys
        load="load_module $module;"
        metrics="tollgate_metrics;"
        limit_http='tollgate_zone bench:1m;
    tollgate_cluster_capacity bench capacity=10000000;
    tollgate_app bench guaranteed=1000000 burst=1000000;'
        limit_location='tollgate_cluster bench;
            tollgate zone=bench app=$http_x_app_id;'
        if [ "$1" = tollgate_redis ]; then
            # callgrind slows nginx, not Redis: a reply can wait in the
            # socket past the default 100 ms before nginx reads it
            limit_http="$limit_http
    tollgate_redis 127.0.0.1:$redis_port$redis_timeout;
    tollgate_gateway_id bench;"
        fi
        ;;
    *)
        echo "bench: unknown variant \"$1\"" >&2
        exit 2
        ;;
    esac
}


# start_nginx VARIANT MODE [WRAPPER...]: starts nginx for VARIANT, with a
# master and one worker (MODE wrk) or as a single process (MODE
# callgrind), under WRAPPER if given; sets nginx_pid, port and prefix.
start_nginx() {
    local variant=$1 mode=$2 process user=""

    shift 2
    prefix=$work/$variant-$mode
    port=$(tg_free_port)
    rm -rf "$prefix"
    mkdir -p "$prefix/tmp"

    if [ "$mode" = wrk ]; then
        process="daemon off;
master_process on;"
        user=$(tg_user_directive)
    else
        # one process: callgrind then counts every instruction nginx runs
        process="daemon off;
master_process off;"
    fi

    variant_lines "$variant" "$mode"
    tg_render "$root/bench/nginx.conf.in" "$prefix/nginx.conf" \
        LOAD="$load" USER="$user" PROCESS="$process" PREFIX="$prefix" \
        WWW="$work/www" PORT="$port" LIMIT_HTTP="$limit_http" \
        LIMIT_LOCATION="$limit_location" METRICS="$metrics"

    # each run of the distributed variant starts from an empty Redis
    if [ "$variant" = tollgate_redis ]; then
        redis-cli -p "$redis_port" flushall >/dev/null
    fi

    # valgrind needs seconds to start nginx
    start_server "nginx ($variant, $mode)" "$port" "$prefix/error.log" 120 \
        "$@" "$TG_NGINX" -p "$prefix/" -c "$prefix/nginx.conf" \
        -e "$prefix/error.log"
    nginx_pid=$server_pid
}


# stop_nginx: stops the nginx of start_nginx and fails if it logged
# anything at error level or above (limit_req logs each rejection there).
stop_nginx() {
    local tenths=600

    # nginx as a single process can take the signal just before it blocks
    # in epoll_wait with no timer set, and then sleeps on with its exit
    # flag raised; a connection wakes it.  Under valgrind, with the
    # machine busy, that window is wide.
    if kill -TERM "$nginx_pid" 2>/dev/null; then
        while kill -0 "$nginx_pid" 2>/dev/null && [ "$tenths" -gt 0 ]; do
            sleep 0.1
            tenths=$(( tenths - 1 ))
            if [ $(( tenths % 10 )) = 0 ]; then
                tg_port_open "$port" || true
            fi
        done
    fi
    tg_stop_pid "$nginx_pid"
    untrack "$nginx_pid"

    if grep -E '\[(error|crit|alert|emerg)\]' "$prefix/error.log" >&2; then
        echo "bench: errors in $prefix/error.log" >&2
        exit 1
    fi
}


# nginx maps the module it loads: a private copy keeps it safe from any
# rebuild of build/ while it runs (a file rewritten in place is a SIGBUS)
case " $BENCH_VARIANTS " in
    *" tollgate"*)
        cp "$module" "$work/ngx_http_tollgate_module.so"
        module=$work/ngx_http_tollgate_module.so
        ;;
esac

# the object every request fetches, world-readable for the worker user
mkdir -p "$work/www" "$work/raw"
cp /proc/loadavg "$work/raw/loadavg-before"
head -c 1024 /dev/urandom >"$work/www/object"
chmod 755 "$work" "$work/www"
chmod 644 "$work/www/object"

url_path=/object

# tollgate_redis: one Redis for the whole run, nothing persisted
redis_port=""
case " $BENCH_VARIANTS " in
    *" tollgate_redis "*)
        mkdir -p "$work/redis"
        redis_port=$(tg_free_port)
        start_server redis-server "$redis_port" "$work/redis/redis.log" 10 \
            redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
            --appendonly no --dir "$work/redis" \
            --logfile "$work/redis/redis.log"
        ;;
esac
wrk_args="-t$BENCH_THREADS -c$BENCH_CONNECTIONS -s $root/bench/wrk.lua"

echo "bench: throughput, $BENCH_RUNS x ${BENCH_DURATION}s per variant" \
     "($BENCH_VARIANTS)"
for run in $(seq "$BENCH_RUNS"); do
    for v in $BENCH_VARIANTS; do
        start_nginx "$v" wrk

        # warm-up, not recorded: first connections, page cache, CPU caches
        # shellcheck disable=SC2086
        run_tracked wrk $wrk_args -d1s "http://127.0.0.1:$port$url_path" \
            >/dev/null
        # shellcheck disable=SC2086
        run_tracked wrk $wrk_args -d"${BENCH_DURATION}s" \
            "http://127.0.0.1:$port$url_path" >"$work/raw/wrk-$v-$run.txt"

        # Tollgate's own counters: lease hits, Redis calls
        case $v in
        tollgate*)
            curl -sf "http://127.0.0.1:$port/metrics" \
                >"$work/raw/metrics-$v-$run.txt"
            ;;
        esac

        stop_nginx
        grep '^Requests/sec' "$work/raw/wrk-$v-$run.txt" |
            sed "s/^/  run $run $v: /"
    done
done

echo "bench: instructions, $BENCH_REPEATS x $BENCH_REQUESTS requests" \
     "under callgrind per variant"
for v in $BENCH_VARIANTS; do
    for rep in $(seq "$BENCH_REPEATS"); do
        # 0 requests is the idle run whose count is subtracted
        for count in 0 "$BENCH_REQUESTS"; do
            out=$work/raw/callgrind-$v-$count-$rep.out
            start_nginx "$v" callgrind valgrind --tool=callgrind -q \
                --callgrind-out-file="$out"
            if [ "$count" -gt 0 ]; then
                run_tracked /usr/bin/python3 "$root/bench/client.py" \
                    "$port" "$url_path" "$count"
            fi
            stop_nginx
            if [ ! -s "$out" ]; then
                echo "bench: callgrind wrote no profile ($out)" >&2
                exit 1
            fi
        done
        echo "  $v repeat $rep done"
    done
done

/usr/bin/python3 "$root/bench/report.py" "$work/raw" "$root/bench/results" \
    "$root/docs/benchmarks.md"
