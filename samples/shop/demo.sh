#!/bin/sh
# The shop sample end to end, offline: build and import its image, bring it
# up, order through the published port (frontend -> api -> store), watch the
# worker ship it, then take it all down. Usage: demo.sh BERTH_BINARY
set -eu
berth=${1:?usage: demo.sh path/to/berth}
here=$(cd "$(dirname "$0")" && pwd)
get() { /usr/bin/busybox wget -qO- "$1"; }

"$here/images.sh" "$berth"
"$berth" images
cd "$here"
"$berth" up -d
trap '"$berth" down -v' EXIT

echo "--- waiting for http://localhost:8080/"
i=0
until get http://localhost:8080/ >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 100 ] || { echo "the frontend did not answer"; "$berth" logs; exit 1; }
	sleep 0.1
done
echo "--- ordering a teapot: wget -qO- 'http://localhost:8080/?order=teapot'"
get 'http://localhost:8080/?order=teapot'
sleep 1.5
echo "--- a moment later the worker has shipped it:"
get http://localhost:8080/
"$berth" ps
"$berth" logs --tail 4
