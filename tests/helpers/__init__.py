"""What the tests share, imported by module path (``from tests.helpers.redis import start_redis``).

processes (ports, waiting, stopping by PID), redis (the one redis-server starter), settings (a Redis-free
factory and the Redis one's environment), web (the app on waitress in a thread, with a keeper: keeper), worker (a real
``python -m workers worker``), nodes (a node under the real supervisord.conf), images, http (slow tile
servers), hostile (bad answers and files), faults, sshd, netns and cluster (the orchestrator's machines).
"""
