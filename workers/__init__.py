"""The queue protocol, the mosaic build pipeline, result stores and the worker daemon."""
