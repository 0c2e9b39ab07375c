#!/bin/sh
# Builds a minimal Debian 12 (bookworm) base image with debootstrap and imports it as localhost/debian:12-base,
# for machines that reach an apt mirror but no container registry (`make image` runs it when the base is
# missing). The packages come from the apt repositories this machine already uses, and the image keeps them as
# its own sources, so `apt-get` in the Containerfile reaches the same mirror and its security updates.
#
#   config/container/make-base.sh [TAG]      (as root: debootstrap needs it; TAG default localhost/debian:12-base)
set -eu

TAG=${1:-localhost/debian:12-base}
SUITE=bookworm
SOURCES=/etc/apt/sources.list.d/debian.sources

die() { echo "make-base.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap makes device nodes and sets owners)"
command -v debootstrap >/dev/null || die "needs debootstrap: apt-get install debootstrap"
TOOL=$(command -v podman || command -v buildah) || die "needs podman or buildah: apt-get install podman"

# The mirror: the first URI that serves $SUITE, from the deb822 sources file or a classic sources.list line.
mirror=""
if [ -f "$SOURCES" ]; then
    mirror=$(awk -v suite="$SUITE" '/^URIs:/ { uri = $2 } /^Suites:/ { for (i = 2; i <= NF; i++)
             if ($i == suite && uri != "") { print uri; exit } }' "$SOURCES")
fi
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list)
fi
[ -n "$mirror" ] || die "no apt source for $SUITE in $SOURCES or /etc/apt/sources.list"

root=$(mktemp -d /tmp/tessera-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "make-base.sh: debootstrap $SUITE from $mirror" >&2
debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$mirror" >&2

# The machine's own apt sources (its mirror and the security suite), not debootstrap's one-line list.
if [ -f "$SOURCES" ]; then
    rm -f "$root/etc/apt/sources.list"
    cp "$SOURCES" "$root/etc/apt/sources.list.d/debian.sources"
fi
# Slim, as debian:12-slim is: no documentation or man pages now or from later installs, no apt lists.
cat > "$root/etc/dpkg/dpkg.cfg.d/slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
CFG
find "$root/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
rm -rf "$root/usr/share/man/"* "$root/usr/share/info/"* "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin

# PATH as debian:12-slim sets it: an image without one leaves it to each runtime's default.
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if [ "$(basename "$TOOL")" = podman ]; then
    tar -C "$root" -c . | podman import --change "ENV PATH=$path" --change 'CMD ["/bin/bash"]' - "$TAG" >/dev/null
else
    tar -C "$root" -cf "$root.tar" . && trap 'rm -rf "$root" "$root.tar"' EXIT
    ctr=$(buildah from scratch)
    buildah add "$ctr" "$root.tar" / >/dev/null  # a local tar archive is unpacked into /
    buildah config --env "PATH=$path" --cmd /bin/bash "$ctr"
    buildah commit --rm "$ctr" "$TAG" >/dev/null
fi
echo "make-base.sh: imported $TAG" >&2
