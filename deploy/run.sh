#!/bin/bash
# `make run`: a local Tollgate gateway in the foreground.
#
# Starts Debian's nginx with build/ngx_http_tollgate_module.so in front of
# a real storage upstream (nginx's WebDAV module on a temporary folder),
# prints curl lines to try, and on Ctrl-C (SIGINT) or SIGTERM stops the
# nginx it started and removes its temporary folder.
#
# Ports: TOLLGATE_PORT (gateway, default 8080) and TOLLGATE_STORAGE_PORT
# (storage, default 8081), both on 127.0.0.1.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/deploy/nginx.sh"

port=${TOLLGATE_PORT:-8080}
storage_port=${TOLLGATE_STORAGE_PORT:-8081}
# TOLLGATE_MODULE: a module built elsewhere (make BUILD=... module)
module=${TOLLGATE_MODULE:-$root/build/ngx_http_tollgate_module.so}

"$root/scripts/deps.sh" run

# `make run` has built it already; this is for running the script alone
if [ ! -f "$module" ]; then
    make -C "$root" module
fi

if [ "$port" = "$storage_port" ]; then
    echo "run.sh: TOLLGATE_PORT and TOLLGATE_STORAGE_PORT are both $port" >&2
    exit 1
fi
for p in "$port" "$storage_port"; do
    if tg_port_open "$p"; then
        echo "run.sh: 127.0.0.1:$p is in use; choose other ports with" \
             "TOLLGATE_PORT=... TOLLGATE_STORAGE_PORT=... make run" >&2
        exit 1
    fi
done

prefix=$(mktemp -d /tmp/tollgate-run.XXXXXX)
errlog=$prefix/logs/error.log
nginx_pid=""

# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$nginx_pid" ]; then
        tg_stop_pid "$nginx_pid"
    fi
    rm -rf "$prefix"
}
# INT and TERM exit through the EXIT trap, so cleanup runs exactly once
trap cleanup EXIT
trap 'echo; echo "stopping"; exit 130' INT
trap 'exit 143' TERM

# workers run as www-data when we are root: they must reach the prefix
# and write the stored objects
mkdir -p "$prefix/logs" "$prefix/tmp" "$prefix/data"
chmod 755 "$prefix"
tg_give_to_workers "$prefix/tmp" "$prefix/data"

# nginx maps the module it loads: a private copy keeps it safe from any
# rebuild of build/ while it runs (a file rewritten in place is a SIGBUS)
cp "$module" "$prefix/ngx_http_tollgate_module.so"
module=$prefix/ngx_http_tollgate_module.so

tg_render "$root/deploy/nginx.conf.in" "$prefix/nginx.conf" \
    MODULE="$module" USER="$(tg_user_directive)" PREFIX="$prefix" \
    DATA="$prefix/data" PORT="$port" STORAGE_PORT="$storage_port"

"$TG_NGINX" -p "$prefix/" -c "$prefix/nginx.conf" -e "$errlog" &
nginx_pid=$!

if ! tg_wait_port "$port" "$nginx_pid" 15 ||
   ! tg_wait_port "$storage_port" "$nginx_pid" 5
then
    echo "run.sh: nginx did not start; its error log ($errlog):" >&2
    cat "$errlog" >&2 || true
    exit 1
fi

gw=http://127.0.0.1:$port
cat <<EOF

Tollgate gateway: $gw  (nginx master PID $nginx_pid, 2 workers)
Storage upstream: http://127.0.0.1:$storage_port  (objects in $prefix/data)
Configuration:    $prefix/nginx.conf
Logs:             $prefix/logs/access.log, $errlog

Applications on cluster "local" (1000 tokens/s; a GET costs 2 tokens):
  web        guaranteed 200/s, burst 400/s, priority 0
  backup     guaranteed 50/s,  burst 100/s, priority 1, may borrow 100
  analytics  guaranteed 5/s,   burst 10/s,  priority 2

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

Ctrl-C stops nginx and removes $prefix.
EOF

# wait, unlike a foreground command, returns as soon as a trapped signal
# arrives, so Ctrl-C runs the INT trap at once
status=0
wait "$nginx_pid" || status=$?
nginx_pid=""
echo "run.sh: nginx exited with status $status; its error log ($errlog):" >&2
tail -n 20 "$errlog" >&2 || true
exit "$status"
