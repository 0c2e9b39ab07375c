"""``python -m workers`` and the ``tessera`` console script: the process prepared, then the CLI."""

import sys


def main() -> int:
    """Prepare the process before NumPy and the kernels load, then run ``tessera``."""
    from workers.cli.startup import prepare_process

    prepare_process()
    from workers.cli.main import main as tessera

    return tessera()


if __name__ == "__main__":
    sys.exit(main())
