"""The contract between web, workers and orchestrator: job package, options and limits, Redis keys,
job and worker states, stream operations and their Lua scripts, queue readings, errors, exit codes,
backoff, logs and whole-file writes.

May import: config, redis and the standard library.
"""
