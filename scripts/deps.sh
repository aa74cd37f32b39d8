#!/bin/sh
# Installs the Debian packages a purpose needs, and only those missing, so
# that a second `make test` costs nothing.
# Usage: deps.sh build|test|bench|run|web
set -eu

# The dashboard builds with Debian 12's Node 18 and npm 9.  A Node.js
# installed otherwise (NodeSource's bundles npm) is used as it is: Debian's
# npm package would try to replace it.
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
    web="chromium"
else
    web="nodejs npm chromium"
fi

build="gcc make nginx nginx-dev libpcre3-dev zlib1g-dev libssl-dev
       libcmocka-dev libhiredis-dev pkg-config"
admin="$build libwebsockets-dev libjansson-dev libjwt-dev libsodium-dev
       libpq-dev postgresql redis-server"
test="$build $admin python3 python3-pytest python3-requests python3-redis
      python3-prometheus-client prometheus python3-websocket python3-yaml
      redis-server redis-tools curl procps $web"
# the chaos suite's network partition: namespaces and veth pairs
test="$test iproute2"
run="$admin curl python3"
bench="$test wrk valgrind nginx libnginx-mod-http-lua python3-matplotlib"

case "${1:-build}" in
    build) want=$build ;;
    test)  want=$test ;;
    run)   want=$run ;;
    bench) want=$bench ;;
    admin) want=$admin ;;
    web)   want=$web ;;
    *) echo "deps.sh: unknown purpose \"$1\"" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "deps.sh: missing packages:$missing; run as root or install them" >&2
    exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
