#!/bin/sh
# The image's entrypoint: `web` runs tessera-web, anything else is a `tessera` command (worker, keeper, webhooks,
# orchestrator, probe, status, ...). exec: the command is PID 1's only process and gets SIGTERM itself.
set -eu

# Numba uses a cache folder only if it can write to it: it skips a read-only one and compiles every kernel.
# Under a read-only root filesystem, the commands that run kernels get a copy of the image's compiled kernels
# in the writable /tmp (an emptyDir; about 20 MB), which then loads as the original would.
baked=/opt/tessera/numba-cache
case "${1:-}" in
    worker | build | warm-kernels)
        if [ "${NUMBA_CACHE_DIR:-}" = "$baked" ] && ! [ -w "$baked" ]; then
            copy=${TMPDIR:-/tmp}/numba-cache
            if mkdir -p "$copy" && cp -a "$baked/." "$copy/"; then
                export NUMBA_CACHE_DIR="$copy"
            else
                echo "tessera-entrypoint: cannot copy the kernel cache to $copy: kernels compile on first use" >&2
            fi
        fi ;;
esac

if [ "${1:-}" = web ]; then
    shift
    exec /opt/tessera/bin/tessera-web "$@"
fi
exec /opt/tessera/bin/tessera "$@"
