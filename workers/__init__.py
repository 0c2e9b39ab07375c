"""The queue protocol, the mosaic build pipeline, result stores and the worker daemon.

Importing it changes nothing global: the entry points (workers/__main__.py) prepare the process
(workers/cli/startup.py) before NumPy loads.
"""
