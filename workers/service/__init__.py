"""The long-running processes under supervisord: worker daemon, heartbeat, watchdog, embedded Redis.

May import: everything in workers below it (protocol, inputs, results, pipeline), kernels, config.
"""
