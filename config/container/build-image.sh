#!/bin/sh
# `make image`: builds the image `tessera` from this checkout with podman or buildah.
#
# The build context is made here, in a temporary folder: the Containerfile, the entrypoint and a wheelhouse
# (the checkout's wheel, built from the files git tracks or would track, and the wheels of its runtime
# dependencies, through this machine's pip and its index settings). So the image build itself reaches no
# package index, and nothing ignored (config/local.yaml and its secrets, var/, .venv/) can enter the image.
#
# Environment: IMAGE (default tessera), BASE (default: debian:12-slim if present, else localhost/debian:12-base,
# made by make-base.sh when missing), NUMBA_CPU_NAME (default generic: see the Containerfile), PYTHON (the
# Python whose pip builds the wheels; default /usr/bin/python3: on Debian 12 that is the image's own 3.11.2, so
# environment markers resolve as they will in the image: redis needs async-timeout below 3.11.3, which a newer
# Python's pip would leave out).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
IMAGE=${IMAGE:-tessera}
NUMBA_CPU_NAME=${NUMBA_CPU_NAME:-generic}
PYTHON=${PYTHON:-/usr/bin/python3}
LOCAL_BASE=localhost/debian:12-base

die() { echo "make image: $*" >&2; exit 1; }

TOOL=$(command -v podman || command -v buildah) \
    || die "needs podman or buildah (Debian: apt-get install podman); nothing was built"
exists() {
    case "$TOOL" in
        */podman) podman image exists "$1" ;;
        *) buildah inspect --type image "$1" >/dev/null 2>&1 ;;
    esac
}

# The base: given, or a local debian:12-slim, or our own (this machine may reach no registry: never pull here).
if [ -z "${BASE:-}" ]; then
    if exists debian:12-slim; then
        BASE=debian:12-slim
    else
        BASE=$LOCAL_BASE
        exists "$BASE" || "$here/make-base.sh" "$BASE" || die "no base image: make-base.sh failed"
    fi
fi
exists "$BASE" || die "base image $BASE is not on this machine (pull it, or unset BASE to build our own)"

ctx=$(mktemp -d /tmp/tessera-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
mkdir "$ctx/src" "$ctx/wheels"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$ctx/src" 2>/dev/null) \
    || die "cannot copy the checkout's files (needs git)"
"$PYTHON" -m pip --version >/dev/null 2>&1 || die "$PYTHON has no pip (Debian: apt-get install python3-pip)"
"$PYTHON" -m pip wheel -q --wheel-dir "$ctx/wheels" "$ctx/src" || die "cannot build the wheels"
cp "$here/Containerfile" "$ctx/Containerfile"
cp -p "$here/entrypoint.sh" "$ctx/entrypoint.sh"

wheels_sha256=$(cd "$ctx/wheels" && sha256sum -- * | sha256sum | cut -d' ' -f1)
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
echo "make image: $TOOL build $IMAGE from $BASE (kernels for CPU $NUMBA_CPU_NAME)" >&2
"$TOOL" build --pull=never -t "$IMAGE" -f "$ctx/Containerfile" \
    --build-arg "BASE=$BASE" --build-arg "NUMBA_CPU_NAME=$NUMBA_CPU_NAME" --build-arg "WHEELS_SHA256=$wheels_sha256" \
    --label "org.opencontainers.image.revision=$revision" --label "org.opencontainers.image.title=tessera" \
    "$ctx"
