"""One mosaic from a package and a source, without Redis: tiles, tile sets, the tile cache and memo,
matching, output, JPEG strips and the deep-zoom view.

May import: kernels, config, workers.protocol, workers.inputs.

The tile modules, from the bottom up:

- ``tiletypes``: what the others pass on: a ``Source`` of bytes, ``PreparedTiles`` with keys and features.
- ``budget`` and ``fetching``: a job's tile budget, and the fetches that are charged to it as tiles arrive.
- ``tiles``: one job's tiles from their bytes: fetch, hash, look up in the tile cache or decode (on other
  processes), square; gives a typed ``PreparedTiles``.
- ``tilecache``: the node's cache of decoded tiles on disk, keyed by each image's content hash.
- ``tilememo``: whole tile sets by their tile list (in the worker's memory, and as records in the tile
  cache), so a set used again skips reading its bytes.
- ``tileset``: where a job's set comes from (the memo, or prepared), started as early as it can be; the
  pipeline (``mosaic``) saves it back once its features are known.
"""
