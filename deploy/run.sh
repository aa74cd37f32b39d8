#!/bin/bash
# `make run`: the local Tollgate stack, in the foreground.
#
# Starts, each on 127.0.0.1 and all in one temporary folder:
#   - a PostgreSQL cluster, run as the postgres user (initdb refuses root),
#   - a redis-server that keeps nothing on disk,
#   - tollgate-admin: the admin API and the dashboard (web/dist) at /,
#   - Debian's nginx with build/ngx_http_tollgate_module.so (the gateway)
#     in front of a real storage upstream (nginx's WebDAV module).
# It prints what runs where and curl lines to try.  Ctrl-C (SIGINT),
# SIGTERM or SIGHUP stops each process by its PID, the gateway first, and
# removes the folder.  When a piece cannot start, one line says which and
# why, what was started is stopped, and the exit status is 1.
#
# TOLLGATE_MODE=standalone (the default): the gateway decides alone, from
# the quotas in its nginx.conf; the admin and the dashboard run beside it
# and do not reach it.
# TOLLGATE_MODE=distributed: the gateway (id local-1) takes its quotas
# from the Redis the admin writes.  The sample cluster and applications of
# nginx.conf are registered in the admin before the gateway starts, so the
# dashboard shows them and what it changes reaches the gateway; the
# gateway's control endpoint answers on loopback.
#
# Environment (ports are on 127.0.0.1):
#   TOLLGATE_PORT          gateway, default 8080
#   TOLLGATE_STORAGE_PORT  storage upstream, default 8081
#   TOLLGATE_ADMIN_PORT    admin API and dashboard, default 8090
#   TOLLGATE_REDIS_PORT    Redis, default a free port
#   TOLLGATE_PG_PORT       PostgreSQL, default a free port
#   TOLLGATE_ADMIN_USER, TOLLGATE_ADMIN_PASSWORD
#                          the dashboard's login, default admin and a
#                          random password (both printed)
#   TOLLGATE_MODULE, TOLLGATE_ADMIN_BIN, TOLLGATE_DASHBOARD
#                          builds made elsewhere (the module, the daemon,
#                          the dashboard's folder)
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/deploy/nginx.sh"

mode=${TOLLGATE_MODE:-standalone}
port=${TOLLGATE_PORT:-8080}
storage_port=${TOLLGATE_STORAGE_PORT:-8081}
admin_port=${TOLLGATE_ADMIN_PORT:-8090}
redis_port=${TOLLGATE_REDIS_PORT:-}
pg_port=${TOLLGATE_PG_PORT:-}
admin_user=${TOLLGATE_ADMIN_USER:-admin}
admin_password=${TOLLGATE_ADMIN_PASSWORD:-}
module=${TOLLGATE_MODULE:-$root/build/ngx_http_tollgate_module.so}
admin_bin=${TOLLGATE_ADMIN_BIN:-$root/build/tollgate-admin}
dashboard=${TOLLGATE_DASHBOARD:-$root/web/dist}
pg_bin=/usr/lib/postgresql/15/bin
gateway_id=local-1

prefix=""
logs=""
# the servers started, in start order, and the signal each stops on;
# cleanup stops them in reverse order
pids=()
stop_signals=()
# those that are this shell's children, for `wait`, and their logs
children=()
child_names=()
child_logs=()
nginx_pid=""
admin_pid=""
redis_pid=""
postmaster_pid=""


fail() {
    echo "run.sh: $*" >&2
    exit 1
}


# fail_with_log LOG MESSAGE: fail, after showing the end of LOG, which
# the cleanup is about to remove
fail_with_log() {
    local log=$1
    shift

    echo "run.sh: $*" >&2
    if [ -s "$log" ]; then
        echo "  last lines of its log, $(basename "$log"):" >&2
        tail -n 15 "$log" | sed 's/^/  | /' >&2
    fi
    exit 1
}


# started NAME PID SIGNAL [LOG]: a LOG names a child of this shell
started() {
    pids+=("$2")
    stop_signals+=("$3")
    if [ -n "${4:-}" ]; then
        children+=("$2")
        child_names+=("$1")
        child_logs+=("$4")
    fi
}


# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local i

    trap - EXIT INT TERM HUP
    for (( i = ${#pids[@]} - 1; i >= 0; i-- )); do
        tg_stop_pid "${pids[i]}" "${stop_signals[i]}"
    done
    if [ -n "$prefix" ]; then
        rm -rf "$prefix"
    fi
}


# run_bg LOG COMMAND...: COMMAND in the background in a session of its
# own, so that a terminal's Ctrl-C reaches this script alone and the
# servers are stopped in order, by PID.  The PID is in $!.
run_bg() {
    local log=$1
    shift

    setsid "$@" >"$log" 2>&1 &
}


# a random string of letters and digits, LENGTH long
random_word() {
    tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$1" || true
}


# json_string TEXT: TEXT as a JSON string
json_string() {
    printf '"%s"' "$(printf '%s' "$1" | sed 's/[\\"]/\\&/g')"
}


# not_up PID SECONDS: why a server waited for is not up
not_up() {
    if kill -0 "$1" 2>/dev/null; then
        echo "no answer within $2 s"
    else
        echo "it exited at start"
    fi
}


# shellcheck disable=SC2317  # called by tg_wait_until
http_ok() {
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" = 200 ]
}


# check_build WHAT PATH DEFAULT MAKE_TARGET: builds a missing default with
# make (`make run` has built everything already: this is for the script
# run alone), and names a build still missing
check_build() {
    local what=$1 path=$2 default=$3 target=$4

    if [ ! -e "$path" ] && [ "$path" = "$default" ]; then
        make -C "$root" "$target" >&2 || true
    fi
    if [ ! -e "$path" ]; then
        fail "cannot start $what: $path is missing (make $target builds it)"
    fi
}


check_ports() {
    local pair name p seen=" "

    for pair in "gateway:$port" "storage:$storage_port" \
                "admin API:$admin_port" "Redis:$redis_port" \
                "PostgreSQL:$pg_port"
    do
        name=${pair%:*}
        p=${pair##*:}
        case $p in
            ''|*[!0-9]*) fail "cannot start the $name: port \"$p\" is not" \
                              "a number" ;;
        esac
        case $seen in
            *" $p "*) fail "cannot start the $name: port $p is given twice" ;;
        esac
        seen="$seen$p "
        if tg_port_open "$p"; then
            fail "cannot start the $name: 127.0.0.1:$p is in use; choose" \
                 "other ports with TOLLGATE_PORT, TOLLGATE_STORAGE_PORT," \
                 "TOLLGATE_ADMIN_PORT, TOLLGATE_REDIS_PORT, TOLLGATE_PG_PORT"
        fi
    done
}


start_postgres() {
    local dir=$prefix/pg runuser_pid

    mkdir "$dir"
    chown postgres:postgres "$dir"
    chmod 700 "$dir"

    if ! runuser -u postgres -- "$pg_bin/initdb" -D "$dir/data" \
             -U postgres -A trust --no-sync -E UTF8 --no-locale \
             >"$logs/initdb.log" 2>&1
    then
        fail_with_log "$logs/initdb.log" \
            "cannot start PostgreSQL: initdb failed"
    fi

    # cluster_name puts the folder's name in its processes' titles
    run_bg "$logs/postgres.log" \
        runuser -u postgres -- "$pg_bin/postgres" -D "$dir/data" \
        -p "$pg_port" -k "$dir" -c listen_addresses=127.0.0.1 \
        -c fsync=off -c max_connections=20 \
        -c cluster_name="$(basename "$prefix")"
    runuser_pid=$!
    started postgres "$runuser_pid" TERM "$logs/postgres.log"

    if ! tg_wait_until "$runuser_pid" 30 \
             "$pg_bin/pg_isready" -q -h "$dir" -p "$pg_port"
    then
        fail_with_log "$logs/postgres.log" \
            "cannot start PostgreSQL on 127.0.0.1:$pg_port:" \
            "$(not_up "$runuser_pid" 30)"
    fi

    # runuser would kill postgres 2 s after passing it SIGTERM: the
    # postmaster is stopped directly, by SIGINT (a fast shutdown)
    postmaster_pid=$(head -n 1 "$dir/data/postmaster.pid")
    started postgres "$postmaster_pid" INT

    if ! runuser -u postgres -- "$pg_bin/createdb" -h "$dir" \
             -p "$pg_port" tollgate >>"$logs/postgres.log" 2>&1
    then
        fail_with_log "$logs/postgres.log" \
            "cannot create the database tollgate in PostgreSQL"
    fi
}


start_redis() {
    mkdir "$prefix/redis"

    run_bg "$logs/redis.log" \
        redis-server --port "$redis_port" --bind 127.0.0.1 --save '' \
        --appendonly no --dir "$prefix/redis"
    redis_pid=$!
    started redis "$redis_pid" TERM "$logs/redis.log"

    if ! tg_wait_port "$redis_port" "$redis_pid" 10; then
        fail_with_log "$logs/redis.log" \
            "cannot start Redis on 127.0.0.1:$redis_port:" \
            "$(not_up "$redis_pid" 10)"
    fi
}


# The daemon and the dashboard are copied, like the module, so that a
# rebuild while the stack runs changes nothing under it.
start_admin() {
    local db_url="host=$prefix/pg port=$pg_port"

    db_url="$db_url dbname=tollgate user=postgres"

    cp "$admin_bin" "$prefix/tollgate-admin"
    cp -r "$dashboard" "$prefix/dashboard"

    TOLLGATE_ADMIN_LISTEN=127.0.0.1:$admin_port \
    TOLLGATE_DATABASE_URL="$db_url" \
    TOLLGATE_REDIS=127.0.0.1:$redis_port \
    TOLLGATE_JWT_SECRET=$(random_word 48) \
    TOLLGATE_ADMIN_USER=$admin_user \
    TOLLGATE_ADMIN_PASSWORD=$admin_password \
    TOLLGATE_STATIC_DIR=$prefix/dashboard \
        run_bg "$logs/admin.log" "$prefix/tollgate-admin"
    admin_pid=$!
    started tollgate-admin "$admin_pid" TERM "$logs/admin.log"

    if ! tg_wait_until "$admin_pid" 20 http_ok "$admin_url/healthz"; then
        fail_with_log "$logs/admin.log" \
            "cannot start tollgate-admin on 127.0.0.1:$admin_port:" \
            "$(not_up "$admin_pid" 20)"
    fi
}


# The cluster and applications nginx.conf declares, as admin API calls:
# one "METHOD PATH JSON" line each.
declared_as_api_calls() {
    awk '
    function number(name, value) {
        body = body sprintf(",\"%s\":%s", name, value)
    }

    function text(name, value) {
        body = body sprintf(",\"%s\":\"%s\"", name, value)
    }

    $1 == "tollgate_cluster_capacity" {
        sub(/;.*/, "")
        cluster = $2
        body = ""
        for (i = 3; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "capacity") number("capacity", kv[2])
            if (kv[1] == "reserved") number("reserved_ratio", kv[2])
        }
        print "PUT /clusters/" cluster " {" substr(body, 2) "}"
    }

    $1 == "tollgate_app" {
        sub(/;.*/, "")
        app_cluster = cluster
        body = ""
        for (i = 3; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "guaranteed") number("guaranteed_quota", kv[2])
            if (kv[1] == "burst") number("burst_quota", kv[2])
            if (kv[1] == "priority") number("priority", kv[2])
            if (kv[1] == "max_borrow") number("max_borrow", kv[2])
            if (kv[1] == "profile") text("cost_profile", kv[2])
            if (kv[1] == "cluster") app_cluster = kv[2]
        }
        printf "POST /apps {\"app_id\":\"%s\",\"cluster_id\":\"%s\"%s}\n",
               $2, app_cluster, body
    }' "$1"
}


# admin_api METHOD PATH JSON: one call as the admin user; fails on any
# answer but 200 or 201
admin_api() {
    local code

    code=$(curl -s -o "$prefix/api.out" -w '%{http_code}' -X "$1" \
               -H "Authorization: Bearer $token" \
               -H 'Content-Type: application/json' --data-binary "$3" \
               "$admin_url/api/v1$2") || true
    case $code in
        200|201) return 0 ;;
    esac
    fail "cannot register the sample configuration: the admin answered" \
         "$1 $2 with $code $(cat "$prefix/api.out" 2>/dev/null)"
}


# distributed mode: the admin, source of truth, holds what the gateway's
# nginx.conf declares before the gateway seeds Redis with it
register_declared() {
    local method path body

    token=$(curl -s -X POST -H 'Content-Type: application/json' \
                --data-binary "$login_body" "$admin_url/api/v1/auth/login" |
            sed -n 's/.*"token" *: *"\([^"]*\)".*/\1/p') || true
    if [ -z "$token" ]; then
        fail "cannot log in to tollgate-admin as \"$admin_user\""
    fi

    while read -r method path body; do
        admin_api "$method" "$path" "$body"
    done < <(declared_as_api_calls "$1")
}


start_gateway() {
    local conf=$prefix/nginx.conf redis_lines control_lines

    # workers run as www-data when we are root: they must reach the prefix
    # and write the stored objects
    mkdir -p "$prefix/tmp" "$prefix/data"
    tg_give_to_workers "$prefix/tmp" "$prefix/data"

    # nginx maps the module it loads: a private copy keeps it safe from any
    # rebuild of build/ while it runs (a file rewritten in place is a SIGBUS)
    cp "$module" "$prefix/ngx_http_tollgate_module.so"

    if [ "$mode" = distributed ]; then
        redis_lines=$(cat <<EOF
    # Distributed mode: quotas live in Redis, written by tollgate-admin;
    # the declarations below only seed what Redis does not hold yet.
    tollgate_redis 127.0.0.1:$redis_port;
    tollgate_gateway_id $gateway_id;
EOF
        )
        control_lines=$(cat <<EOF
        location = /tollgate/control {
            tollgate_control;
            allow 127.0.0.1;
            deny all;
        }
EOF
        )
    else
        redis_lines=$(cat <<EOF
    # Standalone mode: no tollgate_redis, so the cluster and application
    # quotas below live in this zone, shared by both workers.
EOF
        )
        control_lines=$(cat <<EOF
        # no control endpoint: the levels it forces exist in distributed mode
EOF
        )
    fi

    tg_render "$root/deploy/nginx.conf.in" "$conf" \
        MODULE="$prefix/ngx_http_tollgate_module.so" \
        USER="$(tg_user_directive)" PREFIX="$prefix" DATA="$prefix/data" \
        PORT="$port" STORAGE_PORT="$storage_port" REDIS="$redis_lines" \
        CONTROL="$control_lines"

    if [ "$mode" = distributed ]; then
        register_declared "$conf"
    fi

    run_bg "$logs/nginx.log" \
        "$TG_NGINX" -p "$prefix/" -c "$conf" -e "$logs/error.log"
    nginx_pid=$!
    started nginx "$nginx_pid" TERM "$logs/error.log"

    if ! tg_wait_port "$port" "$nginx_pid" 15 ||
       ! tg_wait_port "$storage_port" "$nginx_pid" 5
    then
        fail_with_log "$logs/error.log" \
            "cannot start the gateway (nginx) on 127.0.0.1:$port:" \
            "$(not_up "$nginx_pid" 15)"
    fi
}


print_summary() {
    local gw=http://127.0.0.1:$port login_line

    login_line="curl -s -X POST -H 'Content-Type: application/json' -d '$login_body' $admin_url/api/v1/auth/login"

    cat <<EOF

Tollgate local stack, $mode mode (folder $prefix)

  gateway     $gw  nginx, PID $nginx_pid, 2 workers
              config $prefix/nginx.conf
              logs $logs/access.log, $logs/error.log
  storage     http://127.0.0.1:$storage_port  WebDAV, objects in $prefix/data
  admin API   $admin_url/api/v1  tollgate-admin, PID $admin_pid
              log $logs/admin.log
  dashboard   $admin_url/
  login       user "$admin_user", password "$admin_password"
  Redis       127.0.0.1:$redis_port  redis-server, PID $redis_pid, nothing kept on disk
              (redis-cli -p $redis_port)
  PostgreSQL  127.0.0.1:$pg_port  PID $postmaster_pid, database tollgate, user postgres
              (psql -h 127.0.0.1 -p $pg_port -U postgres tollgate)

Applications on cluster "local" (1000 tokens/s; a GET costs 2 tokens):
  web        guaranteed 200/s, burst 400/s, priority 0
  backup     guaranteed 50/s,  burst 100/s, priority 1, may borrow 100
  analytics  guaranteed 5/s,   burst 10/s,  priority 2

EOF

    if [ "$mode" = distributed ]; then
        cat <<EOF
The gateway ($gateway_id) reads these quotas from Redis.  They are
registered in the admin too, so a change made in the dashboard or through
the API reaches the gateway within about a second.

EOF
    else
        cat <<EOF
The gateway is standalone: it decides from the quotas of its nginx.conf,
and what the dashboard changes does not reach it.  To connect them:
TOLLGATE_MODE=distributed make run

EOF
    fi

    cat <<EOF
Try, from another terminal:

  # store an object as "web" (2 tokens + 1 per 64 KiB started), read it back
  curl -i -X PUT -H 'X-App-Id: web' --data-binary 'hello, storage' $gw/demo/hello.txt
  curl -i -H 'X-App-Id: web' $gw/demo/hello.txt

  # "analytics" holds 10 tokens: about 5 GETs pass, then 429 with Retry-After
  for i in \$(seq 12); do curl -s -o /dev/null -w '%{http_code} ' -H 'X-App-Id: analytics' $gw/demo/hello.txt; done; echo
  curl -i -H 'X-App-Id: analytics' $gw/demo/hello.txt

  # no application id, or an undeclared one, is refused (400, 403)
  curl -i $gw/demo/hello.txt
  curl -i -H 'X-App-Id: nobody' $gw/demo/hello.txt

  # remove the object; state and metrics
  curl -i -X DELETE -H 'X-App-Id: web' $gw/demo/hello.txt
  curl -s $gw/tollgate/status
  curl -s $gw/metrics

  # log in to the admin API, list the applications it holds
  token=\$($login_line | sed -n 's/.*"token" *: *"\([^"]*\)".*/\1/p')
  curl -s -H "Authorization: Bearer \$token" $admin_url/api/v1/apps
EOF

    if [ "$mode" = distributed ]; then
        cat <<EOF

  # create an application through the API; the gateway serves it within a second
  curl -s -X POST -H "Authorization: Bearer \$token" -H 'Content-Type: application/json' -d '{"app_id":"demo","cluster_id":"local","guaranteed_quota":20,"burst_quota":40}' $admin_url/api/v1/apps
  curl -i -H 'X-App-Id: demo' $gw/demo/hello.txt

  # the gateway's degradation level, from its local control endpoint
  curl -s $gw/tollgate/control
EOF
    fi

    cat <<EOF

Ctrl-C stops the stack and removes $prefix.
EOF
}


case $mode in
    standalone|distributed) ;;
    *) fail "TOLLGATE_MODE is \"$mode\": standalone or distributed" ;;
esac

"$root/scripts/deps.sh" run

check_build "the gateway" "$module" "$root/build/ngx_http_tollgate_module.so" \
    module
check_build "tollgate-admin" "$admin_bin" "$root/build/tollgate-admin" admin
check_build "the dashboard" "$dashboard/index.html" \
    "$root/web/dist/index.html" web
if [ ! -x "$pg_bin/initdb" ]; then
    fail "cannot start PostgreSQL: $pg_bin/initdb is missing" \
         "(Debian package postgresql)"
fi

redis_port=${redis_port:-$(tg_free_port)}
pg_port=${pg_port:-$(tg_free_port)}
check_ports

admin_url=http://127.0.0.1:$admin_port
if [ -z "$admin_password" ]; then
    admin_password=$(random_word 16)
fi
login_body="{\"username\":$(json_string "$admin_user"),"
login_body="$login_body\"password\":$(json_string "$admin_password")}"

prefix=$(mktemp -d /tmp/tollgate-run.XXXXXX)
logs=$prefix/logs
# INT, TERM and HUP exit through the EXIT trap, so cleanup runs once
trap cleanup EXIT
trap 'echo; echo "stopping"; exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# the workers (www-data) and postgres must reach their folders inside
mkdir -p "$logs"
chmod 755 "$prefix"

start_postgres
start_redis
start_admin
start_gateway
print_summary

# wait, unlike a foreground command, returns as soon as a trapped signal
# arrives, so Ctrl-C runs the INT trap at once
status=0
gone=""
wait -n -p gone "${children[@]}" || status=$?
for i in "${!children[@]}"; do
    if [ "${children[i]}" = "$gone" ]; then
        fail_with_log "${child_logs[i]}" "${child_names[i]} (PID $gone)" \
            "exited with status $status; stopping the stack"
    fi
done
exit 1
