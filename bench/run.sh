#!/bin/bash
# `make bench`: what Tollgate costs on the request path, beside its peers.
#
# The same location (a 1 KiB static file; for uploads, PUT stored by the
# DAV module) under variants of one nginx configuration
# (bench/nginx.conf.in):
#   plain          nothing limits: the limit
#   limit_req      stock limit_req by client address, with a rate that
#                  admits every request
#   limit_req_app  the same keyed by the X-App-Id header, as Tollgate is
#   lua_dict       an OpenResty-style token bucket in a lua_shared_dict,
#                  run by access_by_lua (bench/peers/tg_bench_dict.lua)
#   lua_redis      the naive distributed limiter: one EVALSHA per request
#                  to a shared Redis (bench/peers/tg_bench_redis.lua)
#   tollgate       Tollgate standalone, with quotas that admit every
#                  request
#   tollgate_redis the same in distributed mode: quotas in Redis,
#                  requests paid from the gateway's lease
#
# Scenarios (BENCH_SCENARIOS narrows them, BENCH_VARIANTS the variants):
#   hit       one application, every request allowed
#   apps      BENCH_APPS applications drawn at random, in zones of
#             BENCH_APPS_ZONE that cannot hold them all: lookup and eviction
#   uploads   PUT of BENCH_UPLOAD_BYTES (cost from Content-Length)
#   gateways  BENCH_GATEWAYS gateways sharing one Redis, loaded at once
#   far       Redis BENCH_FAR_MS ms away (a delay proxy in front of it)
#   steady    bench/distributed.py: Redis calls per 1000 requests at a
#             steady rate, lease horizons 200 ms and 500 ms
#
# 1. Throughput and latency: wrk on loopback, BENCH_RUNS runs of
#    BENCH_DURATION seconds per variant (BENCH_RUNS_GATEWAYS, two more,
#    in scenario gateways), variants interleaved so that drift in the
#    machine's load spreads over all, median reported.
# 2. Instructions per request (hit, apps, uploads): nginx as one process
#    under callgrind (and Redis too, for the variants that call it),
#    driven by an exact number of requests: (Ir of that run - Ir of a
#    base run) / requests, BENCH_REPEATS times.  The base run starts and
#    stops the same configuration with the warm-up requests only.
#
# Writes bench/results/*.json, docs/img/bench-*.png and regenerates
# docs/benchmarks.md (bench/report.py); BENCH_RESULTS, BENCH_DOC and
# BENCH_IMG put them elsewhere (the smoke test does).  BENCH_KEEP_RAW=DIR
# keeps the raw files (wrk output, metrics, callgrind profiles) there.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/deploy/nginx.sh"

export BENCH_SCENARIOS=${BENCH_SCENARIOS:-hit apps uploads gateways far steady}
export BENCH_VARIANTS=${BENCH_VARIANTS:-}
export BENCH_DURATION=${BENCH_DURATION:-8}
export BENCH_RUNS=${BENCH_RUNS:-3}
export BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-50}
export BENCH_THREADS=${BENCH_THREADS:-1}
export BENCH_REQUESTS=${BENCH_REQUESTS:-10000}
export BENCH_REPEATS=${BENCH_REPEATS:-2}
export BENCH_REPEATS_LONG=${BENCH_REPEATS_LONG:-1}
export BENCH_APPS=${BENCH_APPS:-100000}
export BENCH_APPS_ZONE=${BENCH_APPS_ZONE:-2m}
export BENCH_APPS_WARM=${BENCH_APPS_WARM:-20000}
export BENCH_UPLOAD_BYTES=${BENCH_UPLOAD_BYTES:-1048576}
export BENCH_UPLOAD_REQUESTS=${BENCH_UPLOAD_REQUESTS:-500}
export BENCH_GATEWAYS=${BENCH_GATEWAYS:-3}
# the per-request Redis design's runs with three gateways fall in two
# groups about 40 % apart (how the scheduler lays seven busy processes on
# two cores), so three runs leave the median to chance
export BENCH_RUNS_GATEWAYS=${BENCH_RUNS_GATEWAYS:-$(( BENCH_RUNS + 2 ))}
export BENCH_FAR_MS=${BENCH_FAR_MS:-5}

results=${BENCH_RESULTS:-$root/bench/results}
doc=${BENCH_DOC:-$root/docs/benchmarks.md}
img=${BENCH_IMG:-$root/docs/img}

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
lua_modules=/usr/lib/nginx/modules

"$root/scripts/deps.sh" bench

[ -f "$module" ] || make -C "$root" module

work=$(mktemp -d /tmp/tollgate-bench.XXXXXX)
pids=""

cleanup() {
    local pid

    trap - EXIT INT TERM
    for pid in $pids; do
        tg_stop_pid "$pid"
    done
    if [ -n "${BENCH_KEEP_RAW:-}" ] && [ -d "$work/raw" ]; then
        mkdir -p "$BENCH_KEEP_RAW"
        cp -r "$work/raw/." "$BENCH_KEEP_RAW/"
    fi
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


# scenario_variants SCENARIO: the variants SCENARIO measures, narrowed by
# BENCH_VARIANTS when it is set.
scenario_variants() {
    local all v out=""

    case $1 in
    hit)      all="plain limit_req limit_req_app lua_dict lua_redis tollgate
                   tollgate_redis" ;;
    apps)     all="plain limit_req_app lua_dict tollgate tollgate_redis" ;;
    uploads)  all="plain limit_req_app lua_dict tollgate" ;;
    gateways) all="plain lua_redis tollgate_redis" ;;
    far)      all="plain lua_redis tollgate_redis" ;;
    *)        all="" ;;
    esac

    # one line, so that each name has a space on both sides
    # shellcheck disable=SC2086
    all=$(printf '%s ' $all)
    for v in $all; do
        case " ${BENCH_VARIANTS:-$all} " in
            *" $v "*) out="$out $v" ;;
        esac
    done
    echo "${out# }"
}


# scenario_settings SCENARIO: what differs from one scenario to another,
# the same for each of its variants.
scenario_settings() {
    scenario=$1
    url_path=/object
    wrk_script=$root/bench/wrk.lua
    wrk_tail=""
    client_args=""
    scenario_location=""
    zone_size=1m
    apps_decl="tollgate_app bench guaranteed=1000000 burst=1000000;"
    cg_requests=$BENCH_REQUESTS
    # the base run sends these too: what a gateway does once, at its
    # first requests (connect to Redis, load the scripts, take a first
    # lease), then falls in both runs and cancels out
    cg_warm=100
    cg_repeats=$BENCH_REPEATS
    instances=1
    runs=$BENCH_RUNS
    far_port=""

    case $scenario in
    apps)
        wrk_script=$root/bench/wrk-apps.lua
        wrk_tail="-- $BENCH_APPS"
        client_args="--apps $BENCH_APPS"
        zone_size=$BENCH_APPS_ZONE
        apps_decl="include $work/apps.conf;"
        # the base run fills the zones, so that the requests counted find
        # them full and pay for the eviction
        cg_warm=$BENCH_APPS_WARM
        cg_repeats=$BENCH_REPEATS_LONG
        ;;
    uploads)
        url_path=/up/object
        wrk_tail="-- upload $BENCH_UPLOAD_BYTES"
        client_args="--put $BENCH_UPLOAD_BYTES"
        scenario_location="dav_methods PUT;
            client_max_body_size 1g;"
        cg_requests=$BENCH_UPLOAD_REQUESTS
        cg_repeats=$BENCH_REPEATS_LONG
        ;;
    gateways)
        instances=$BENCH_GATEWAYS
        runs=$BENCH_RUNS_GATEWAYS
        ;;
    esac
}


# variant_lines VARIANT MODE INSTANCE: sets the directives that make up a
# variant.  The $names in single quotes are nginx variables, not the
# shell's.
# shellcheck disable=SC2016
variant_lines() {
    local redis_timeout="" degradation=""

    load="" limit_http="" limit_location="" metrics="return 404;"
    if [ "$2" = callgrind ]; then
        # callgrind slows nginx, not only Redis: a reply can wait in the
        # socket past the default 100 ms before nginx reads it, and the
        # latencies the degradation levels judge grow as much; without
        # this the count would be of level 1 (conserve), not of normal
        redis_timeout=" timeout=5s"
        degradation="
    tollgate_degradation conserve=2s local_first=4s;"
    fi

    case $1 in
    plain)
        ;;
    limit_req)
        # 1e6 r/s with a burst as large never delays nor rejects at
        # loopback speed, yet runs all of limit_req's accounting
        limit_http="limit_req_zone \$binary_remote_addr zone=bench:$zone_size rate=1000000r/s;"
        limit_location='limit_req zone=bench burst=1000000 nodelay;'
        ;;
    limit_req_app)
        # the same, keyed like Tollgate by a request header
        limit_http="limit_req_zone \$http_x_app_id zone=bench:$zone_size rate=1000000r/s;"
        limit_location='limit_req zone=bench burst=1000000 nodelay;'
        ;;
    lua_dict|lua_redis)
        load="load_module $lua_modules/ndk_http_module.so;
load_module $lua_modules/ngx_http_lua_module.so;"
        limit_location='access_by_lua_block { tg_bench.access() }'
        if [ "$1" = lua_dict ]; then
            limit_http="lua_package_path '$root/bench/peers/?.lua;;';
    lua_shared_dict tg_bench_buckets $zone_size;
    init_by_lua_block { tg_bench = require 'tg_bench_dict' }"
        else
            limit_http="lua_package_path '$root/bench/peers/?.lua;;';
    init_by_lua_block {
        tg_bench = require 'tg_bench_redis'
        tg_bench.init('127.0.0.1', $nginx_redis_port)
    }"
        fi
        ;;
    tollgate|tollgate_redis)
        # every application's GET costs 2 tokens, far below its rate;
        # with Redis the same declarations seed its keys (in scenario
        # apps Redis has the applications before nginx starts)
        load="load_module $module;"
        metrics="tollgate_metrics;"
        limit_http="tollgate_zone bench:$zone_size;
    tollgate_cluster_capacity bench capacity=1000000000;"
        if [ "$1" = tollgate ] || [ "$scenario" != apps ]; then
            limit_http="$limit_http
    $apps_decl"
        fi
        limit_location='tollgate_cluster bench;
            tollgate zone=bench app=$http_x_app_id;'
        if [ "$1" = tollgate_redis ]; then
            limit_http="$limit_http
    tollgate_redis 127.0.0.1:$nginx_redis_port$redis_timeout;
    tollgate_gateway_id bench$3;$degradation"
        fi
        ;;
    *)
        echo "bench: unknown variant \"$1\"" >&2
        exit 2
        ;;
    esac
}


# uses_redis VARIANT: true for the variants that talk to Redis.
uses_redis() {
    case $1 in
        lua_redis|tollgate_redis) return 0 ;;
        *) return 1 ;;
    esac
}


# reset_redis PORT: an empty Redis with its counters at zero, holding the
# applications of scenario apps.
reset_redis() {
    redis-cli -p "$1" flushall >/dev/null
    redis-cli -p "$1" config resetstat >/dev/null
    if [ "$scenario" = apps ]; then
        redis-cli -p "$1" --pipe <"$work/apps.resp" >/dev/null
    fi
}


# start_nginx VARIANT MODE INSTANCE [WRAPPER...]: starts nginx for
# VARIANT, with a master and one worker (MODE wrk) or as a single process
# (MODE callgrind), under WRAPPER if given; sets nginx_pid, port and
# prefix.  The caller has emptied Redis.
start_nginx() {
    local variant=$1 mode=$2 instance=$3 process user=""

    shift 3
    prefix=$work/$scenario-$variant-$mode$instance
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

    variant_lines "$variant" "$mode" "$instance"
    tg_render "$root/bench/nginx.conf.in" "$prefix/nginx.conf" \
        LOAD="$load" USER="$user" PROCESS="$process" PREFIX="$prefix" \
        WWW="$work/www" PORT="$port" LIMIT_HTTP="$limit_http" \
        LIMIT_LOCATION="$limit_location" METRICS="$metrics" \
        SCENARIO_LOCATION="$scenario_location"

    # valgrind needs seconds to start nginx (and 100 000 applications)
    start_server "nginx ($variant, $mode)" "$port" "$prefix/error.log" 300 \
        "$@" "$TG_NGINX" -p "$prefix/" -c "$prefix/nginx.conf" \
        -e "$prefix/error.log"
    nginx_pid=$server_pid
}


# stop_nginx PID PORT PREFIX: stops an nginx of start_nginx and fails if
# it logged anything at error level or above (limit_req logs each
# rejection there).
stop_nginx() {
    local pid=$1 port=$2 prefix=$3 tenths=600

    # nginx as a single process can take the signal just before it blocks
    # in epoll_wait with no timer set, and then sleeps on with its exit
    # flag raised; a connection wakes it.  Under valgrind, with the
    # machine busy, that window is wide.
    if kill -TERM "$pid" 2>/dev/null; then
        while kill -0 "$pid" 2>/dev/null && [ "$tenths" -gt 0 ]; do
            sleep 0.1
            tenths=$(( tenths - 1 ))
            if [ $(( tenths % 10 )) = 0 ]; then
                tg_port_open "$port" || true
            fi
        done
    fi
    tg_stop_pid "$pid"
    untrack "$pid"

    if grep -qE '\[(error|crit|alert|emerg)\]' "$prefix/error.log"; then
        grep -E '\[(error|crit|alert|emerg)\]' "$prefix/error.log" |
            head -5 >&2
        echo "bench: errors in $prefix/error.log" >&2
        exit 1
    fi
}


# start_redis DIR [WRAPPER...]: a redis-server of our own, nothing
# persisted; sets redis_pid and the port it listens on, redis_port.
start_redis() {
    local dir=$1

    shift
    mkdir -p "$dir"
    redis_port=$(tg_free_port)
    start_server redis-server "$redis_port" "$dir/redis.log" 120 \
        "$@" redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$dir" --logfile "$dir/redis.log"
    redis_pid=$server_pid
}


# start_far_proxy: the delay proxy of tests/distributed/tgdist.py (a
# process of its own, asyncio) in front of the shared Redis, holding what
# nginx sends BENCH_FAR_MS ms; sets far_port.
start_far_proxy() {
    local tenths=100 out=$work/far-proxy.port

    /usr/bin/python3 "$root/tests/distributed/tgdist.py" delay-proxy \
        "$shared_redis_port" "0.$(printf '%03d' "$BENCH_FAR_MS")" >"$out" &
    pids="$pids $!"
    far_pid=$!
    while ! grep -qE '^[0-9]+$' "$out" && [ "$tenths" -gt 0 ]; do
        sleep 0.1
        tenths=$(( tenths - 1 ))
    done
    far_port=$(head -1 "$out")
    if [ -z "$far_port" ]; then
        echo "bench: the delay proxy did not start" >&2
        exit 1
    fi
}


# cpu_ns PID...: CPU time, in nanoseconds, that the processes PID and
# their children have run so far, every thread counted (the scheduler's
# own clock: finer than the 10 ms ticks of /proc/PID/stat)
cpu_ns() {
    local top pid tasks=""

    for top in "$@"; do
        for pid in "$top" $(pgrep -P "$top" || true); do
            tasks="$tasks /proc/$pid/task/*/schedstat"
        done
    done
    # shellcheck disable=SC2086
    cat $tasks 2>/dev/null | awk '{ ns += $1 } END { printf "%.0f\n", ns }'
}


# wrk_runs VARIANT RUN: one fresh set of gateways of VARIANT, a warm-up
# and BENCH_DURATION seconds of wrk on each at once; keeps wrk's output,
# Tollgate's counters and Redis's.
wrk_runs() {
    local v=$1 run=$2 i wpid wpids="" gw_pids=() gw_ports=() gw_prefixes=()
    local cpu_nginx cpu_redis
    local raw=$work/raw/$scenario

    if uses_redis "$v"; then
        reset_redis "$shared_redis_port"
    fi
    for i in $(seq "$instances"); do
        start_nginx "$v" wrk "$i"
        gw_pids+=("$nginx_pid")
        gw_ports+=("$port")
        gw_prefixes+=("$prefix")
    done

    # warm-up, kept for the request count: first connections, page cache,
    # CPU caches, leases
    for phase in warm run; do
        wpids=""
        if [ $phase = run ]; then
            cpu_nginx=$(cpu_ns "${gw_pids[@]}")
            cpu_redis=$(cpu_ns "$shared_redis_pid")
        fi
        for i in $(seq "$instances"); do
            # shellcheck disable=SC2086
            wrk $wrk_args -d"$([ $phase = warm ] && echo 1 ||
                               echo "$BENCH_DURATION")s" \
                -s "$wrk_script" \
                "http://127.0.0.1:${gw_ports[$((i - 1))]}$url_path" \
                $wrk_tail >"$raw/wrk$phase-$v-$run-$i.txt" &
            wpids="$wpids $!"
            pids="$pids $!"
        done
        for wpid in $wpids; do
            wait "$wpid" || { echo "bench: wrk failed ($v)" >&2; exit 1; }
            untrack "$wpid"
        done
    done

    # what the servers spent during the measured run, wrk aside: on this
    # one machine wrk takes its share of the cores from every variant
    # alike, so requests/s understates how far apart the designs are
    {
        echo "nginx $(( $(cpu_ns "${gw_pids[@]}") - cpu_nginx ))"
        if uses_redis "$v"; then
            echo "redis $(( $(cpu_ns "$shared_redis_pid") - cpu_redis ))"
        fi
    } >"$raw/cpu-$v-$run.txt"

    for i in $(seq "$instances"); do
        case $v in
        tollgate*)
            curl -sf "http://127.0.0.1:${gw_ports[$((i - 1))]}/metrics" \
                >"$raw/metrics-$v-$run-$i.txt"
            ;;
        esac
    done
    if uses_redis "$v"; then
        redis-cli -p "$shared_redis_port" info commandstats \
            >"$raw/redis-$v-$run.txt"
    fi

    for i in $(seq "$instances"); do
        stop_nginx "${gw_pids[$((i - 1))]}" "${gw_ports[$((i - 1))]}" \
            "${gw_prefixes[$((i - 1))]}"
    done
    grep -h '^Requests/sec' "$raw/wrkrun-$v-$run"-*.txt |
        sed "s/^/  $scenario run $run $v: /"
}


# callgrind_runs VARIANT REPEAT: the base and the counted run of VARIANT
# under callgrind, with Redis under callgrind too when VARIANT calls it.
callgrind_runs() {
    local v=$1 rep=$2 count out
    local raw=$work/raw/$scenario

    for count in "$cg_warm" $(( cg_warm + cg_requests )); do
        out=$raw/callgrind-$v-$count-$rep.out
        if uses_redis "$v"; then
            start_redis "$work/cg-redis" valgrind --tool=callgrind -q \
                --callgrind-out-file="$out.redis"
            reset_redis "$redis_port"
            nginx_redis_port=$redis_port
        fi
        start_nginx "$v" callgrind "" valgrind --tool=callgrind -q \
            --callgrind-out-file="$out"
        if [ "$count" -gt 0 ]; then
            # shellcheck disable=SC2086
            run_tracked /usr/bin/python3 "$root/bench/client.py" \
                "$port" "$url_path" "$count" $client_args
        fi
        stop_nginx "$nginx_pid" "$port" "$prefix"
        if uses_redis "$v"; then
            tg_stop_pid "$redis_pid"
            untrack "$redis_pid"
            nginx_redis_port=$shared_redis_port
        fi
        if [ ! -s "$out" ]; then
            echo "bench: callgrind wrote no profile ($out)" >&2
            exit 1
        fi
    done
}


# the applications of scenario apps: declarations for standalone mode, a
# pipeline of HSETs for Redis (the key layout of docs/redis-keys.md)
write_apps() {
    /usr/bin/python3 - "$BENCH_APPS" "$work" <<'EOF'
import sys

apps, work = int(sys.argv[1]), sys.argv[2]


def resp(*words):
    out = ["*%d\r\n" % len(words)]
    for w in words:
        w = str(w)
        out.append("$%d\r\n%s\r\n" % (len(w.encode()), w))
    return "".join(out)


with open(work + "/apps.conf", "w") as conf, \
        open(work + "/apps.resp", "w") as pipe:
    for n in range(1, apps + 1):
        app = "app-%d" % n
        conf.write("tollgate_app %s guaranteed=1000 burst=1000;\n" % app)
        pipe.write(resp("HSET", "tg:{bench}:app:" + app, "app_id", app,
                        "cluster_id", "bench", "guaranteed_quota", 1000,
                        "burst_quota", 1000, "priority", 1,
                        "max_borrow", 0, "cost_profile", "standard",
                        "version", 1))
        pipe.write(resp("SADD", "tg:{bench}:apps", app))
EOF
}


# nginx maps the module it loads: a private copy keeps it safe from any
# rebuild of build/ while it runs (a file rewritten in place is a SIGBUS)
cp "$module" "$work/ngx_http_tollgate_module.so"
module=$work/ngx_http_tollgate_module.so

# the object every request fetches, world-readable for the worker user;
# the directory uploads go to, writable by it
mkdir -p "$work/www/up" "$work/raw"
cp /proc/loadavg "$work/raw/loadavg-before"
head -c 1024 /dev/urandom >"$work/www/object"
chmod 755 "$work" "$work/www"
chmod 644 "$work/www/object"
tg_give_to_workers "$work/www/up"
write_apps

# one Redis for every wrk run, nothing persisted
start_redis "$work/redis"
shared_redis_port=$redis_port
shared_redis_pid=$redis_pid
nginx_redis_port=$shared_redis_port

wrk_args="-t$BENCH_THREADS -c$BENCH_CONNECTIONS"
measured=""

for scenario in $BENCH_SCENARIOS; do
    [ "$scenario" = steady ] && continue
    variants=$(scenario_variants "$scenario")
    if [ -z "$variants" ]; then
        echo "bench: scenario \"$scenario\" has none of the variants" \
             "\"$BENCH_VARIANTS\"; skipped" >&2
        continue
    fi
    scenario_settings "$scenario"
    mkdir -p "$work/raw/$scenario"
    echo "$variants" >"$work/raw/$scenario/variants"
    measured="$measured $scenario"

    if [ "$scenario" = far ]; then
        start_far_proxy
        nginx_redis_port=$far_port
    fi

    echo "$runs" >"$work/raw/$scenario/runs"
    echo "bench: $scenario: throughput, $runs x ${BENCH_DURATION}s" \
         "per variant ($variants)"
    for run in $(seq "$runs"); do
        for v in $variants; do
            wrk_runs "$v" "$run"
        done
    done

    if [ "$scenario" = far ]; then
        tg_stop_pid "$far_pid"
        untrack "$far_pid"
        nginx_redis_port=$shared_redis_port
    fi

    case $scenario in
    hit|apps|uploads)
        echo "bench: $scenario: instructions, $cg_repeats x" \
             "$cg_requests requests under callgrind per variant"
        echo "$cg_repeats" >"$work/raw/$scenario/callgrind-repeats"
        echo "$cg_warm" >"$work/raw/$scenario/callgrind-base"
        for v in $variants; do
            for rep in $(seq "$cg_repeats"); do
                callgrind_runs "$v" "$rep"
            done
            echo "$v" >>"$work/raw/$scenario/callgrind-variants"
            echo "  $scenario $v done"
        done
        ;;
    esac
done

# first, so that the targets table reads its fresh figures
case " $BENCH_SCENARIOS " in
    *" steady "*)
        BENCH_DOC=$doc /usr/bin/python3 "$root/bench/distributed.py" \
            >"$work/raw/distributed.out"
        ;;
esac

if [ -n "$measured" ]; then
    BENCH_MEASURED=$measured /usr/bin/python3 "$root/bench/report.py" \
        "$work/raw" "$results" "$doc" "$img"
else
    /usr/bin/python3 "$root/bench/report.py" --doc "$results" "$doc" "$img"
fi
