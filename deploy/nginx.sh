# shellcheck shell=bash
# Shell helpers shared by deploy/run.sh and bench/run.sh: render an nginx
# configuration from a template, pick and probe loopback ports, wait for
# servers and stop processes by PID.  Source it from bash; it defines
# functions only and changes no shell option.

# The Debian binary, not whatever nginx is first on PATH.
TG_NGINX=${TG_NGINX:-/usr/sbin/nginx}


# tg_render TEMPLATE OUTPUT NAME=VALUE...
# Writes TEMPLATE to OUTPUT with every @NAME@ replaced by VALUE, which may
# span several lines (later lines are not indented for you).  A
# placeholder left unreplaced is an error, so a template and its caller
# cannot drift apart silently.
tg_render() {
    local template=$1 output=$2 pair name value script=""
    shift 2

    for pair in "$@"; do
        name=${pair%%=*}
        value=${pair#*=}
        # sed treats \, & and the delimiter | specially in a replacement,
        # and needs a backslash before each newline of a multi-line value
        value=$(printf '%s' "$value" | sed -e 's/[\\&|]/\\&/g' -e '$!s/$/\\/')
        script="${script}s|@${name}@|${value}|g
"
    done

    sed -e "$script" "$template" >"$output"

    if grep -n '@[A-Z_][A-Z0-9_]*@' "$output" >&2; then
        echo "tg_render: unreplaced placeholders in $output" >&2
        return 1
    fi
}


# tg_port_open PORT: true when something accepts connections on
# 127.0.0.1:PORT.  Uses bash's /dev/tcp so it needs no client program.
tg_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}


# tg_free_port: prints a loopback port nobody listens on now.  The kernel
# picks it; it stays free unless another program takes it in the moment
# before our server binds it, which the caller detects as a failed start.
tg_free_port() {
    /usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}


# tg_wait_until PID SECONDS COMMAND...: runs COMMAND every 0.1 s until it
# succeeds.  Fails early if PID exits first (the server refused its
# configuration), or after SECONDS.
tg_wait_until() {
    local pid=$1 tenths=$(( $2 * 10 ))
    shift 2

    while [ "$tenths" -gt 0 ]; do
        "$@" && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
        tenths=$(( tenths - 1 ))
    done
    return 1
}


# tg_wait_port PORT PID SECONDS: waits until PORT accepts connections,
# as tg_wait_until does.
tg_wait_port() {
    tg_wait_until "$2" "$3" tg_port_open "$1"
}


# tg_stop_pid PID [SIGNAL]: signals PID (TERM by default), waits up to
# 10 s for it to exit, then kills it.  Quiet when PID is already gone.
tg_stop_pid() {
    local pid=$1 sig=${2:-TERM} tenths=100

    kill -"$sig" "$pid" 2>/dev/null || return 0
    while kill -0 "$pid" 2>/dev/null && [ "$tenths" -gt 0 ]; do
        sleep 0.1
        tenths=$(( tenths - 1 ))
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "process $pid did not stop on SIG$sig; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    # reap it when it is our child; harmless otherwise
    wait "$pid" 2>/dev/null || true
}


# tg_user_directive: the "user" line for a generated nginx.conf.  The
# master runs as root under `make run`, so its workers drop to Debian's
# www-data; as anyone else nginx cannot switch users and the line would
# only draw a warning.
tg_user_directive() {
    if [ "$(id -u)" = 0 ]; then
        echo "user www-data www-data;"
    fi
}


# tg_give_to_workers DIR...: lets the worker user of tg_user_directive
# write into DIR (uploads, temp files); a no-op when not root.
tg_give_to_workers() {
    if [ "$(id -u)" = 0 ]; then
        chown www-data:www-data "$@"
    fi
}
