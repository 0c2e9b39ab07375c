"""The `tessera` command and its one-shot tools.

May import: all of workers, kernels, config.
"""
