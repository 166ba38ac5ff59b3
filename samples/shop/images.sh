#!/bin/sh
# Builds the shop sample's image offline (one static Go program) and
# imports it into berth as shop-app. Usage: images.sh BERTH_BINARY
set -eu
berth=${1:?usage: images.sh path/to/berth}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/images"
rm -rf "$out" && mkdir -p "$out/rootfs/data" "$out/rootfs/tmp"
(cd "$here/app" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/rootfs/app" .)
chmod 1777 "$out/rootfs/tmp"
tar -C "$out/rootfs" -cf "$out/shop-app.tar" .
"$berth" image import "$out/shop-app.tar" shop-app
