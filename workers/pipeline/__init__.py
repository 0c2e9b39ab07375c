"""One mosaic from a package and a source, without Redis: tiles, tile sets, the tile cache and memo,
matching, output, JPEG strips and the deep-zoom view.

May import: kernels, config, workers.protocol, workers.inputs.
"""
