#!/bin/sh
# Builds the hello sample's images offline and imports them into berth:
#   hello-busybox   busybox-static with its applets
#   hello-producer  the static Go program in producer/
# Usage: images.sh BERTH_BINARY
set -eu
berth=${1:?usage: images.sh path/to/berth}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/images"
rm -rf "$out" && mkdir -p "$out/busybox/bin" "$out/busybox/tmp" "$out/producer/data"

busybox=/usr/bin/busybox
[ -x "$busybox" ] || { echo "images.sh: $busybox is missing: apt-get install busybox-static" >&2; exit 1; }
cp "$busybox" "$out/busybox/bin/busybox"
for applet in $("$busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$out/busybox/bin/$applet"
done
chmod 1777 "$out/busybox/tmp"
tar -C "$out/busybox" -cf "$out/busybox.tar" .
"$berth" image import "$out/busybox.tar" hello-busybox

(cd "$here/producer" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$out/producer/producer" .)
tar -C "$out/producer" -cf "$out/producer.tar" .
"$berth" image import --change 'CMD ["/producer"]' "$out/producer.tar" hello-producer
