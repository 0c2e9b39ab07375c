"""``python -m web`` and the ``tessera-web`` console script: the process prepared, then the web app."""

import sys


def main() -> int:
    """One BLAS thread before NumPy loads and Pillow's pixel guard off, then serve (web/app.py)."""
    from workers.protocol.startup import limit_blas_threads

    limit_blas_threads()
    from workers.inputs.images import configure_pillow

    configure_pillow()
    from web.app import main as serve

    return serve()


if __name__ == "__main__":
    sys.exit(main())
