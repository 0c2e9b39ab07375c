"""The `tessera` command: init, redis, sentinel, keeper, webhooks, worker, watchdog, demo, build, warm-kernels,
status, dead, retry, probe.

Other packages add commands through the ``tessera.commands`` entry points (the orchestrator adds
orchestrator, nodes and scale), so nothing here imports them. Exit codes are listed in
workers/protocol/exitcodes.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

import config
from config import RedisSettings, Settings
from config.settings import sentinel_address
from workers.cli import build
from workers.cli.startup import prepare_kernels, warm_kernels
from workers.protocol import logs
from workers.protocol.exitcodes import RET_CONFIG, RET_ERROR, RET_OK, guarded

NO_SECRETS = ("build", "preflight", "warm-kernels")
"""Commands that run without Redis or the web host."""
SERVICES = ("worker", "watchdog", "keeper", "webhooks")
"""Long-running commands under supervisord: they log JSON lines (workers/protocol/logs.py); a plugin command
says so with ``set_defaults(service=True)``."""
PLUGINS = "tessera.commands"
"""Entry-point group: each names ``register(subparsers)``, which adds commands with ``set_defaults(run=...)``,
a callable ``(args, settings) -> exit code``."""
BUILTIN = ("init", "redis", "sentinel", "keeper", "webhooks", "worker", "demo", "status", "preflight", "build", "dead",
           "watchdog", "retry", "warm-kernels", "probe")


def _parser(plugins: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tessera", description="Tessera: an elastic photo-mosaic service.")
    parser.add_argument("--config", help="local YAML config (default: $TESSERA_CONFIG or config/local.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="write config/local.yaml with generated secrets; adds missing ones, "
                                       "never changes a value")
    init.add_argument("--path", default=str(config.settings.LOCAL_FILE))
    redis_cmd = sub.add_parser("redis", help="run the embedded redis-server (as supervisord's `redis` program)")
    redis_cmd.add_argument("--replica-of", metavar="HOST:PORT", help="with redis.sentinels: follow this primary "
                           "when no Sentinel answers (a first start); else the Sentinels' primary is followed")
    _instance_arguments(redis_cmd, "redis.url's port")
    sentinel = sub.add_parser("sentinel", help="run a Redis Sentinel watching the primary (redis.sentinels set)")
    sentinel.add_argument("--primary", metavar="HOST:PORT", help="the primary to watch first (default: redis.url's)")
    sentinel.add_argument("--quorum", type=int, default=2, help="Sentinels that must agree the primary is down")
    _instance_arguments(sentinel, "required", required=True)
    sub.add_parser("keeper", help="admit submitted jobs to the stream and trim it (supervisord's `keeper`)")
    sub.add_parser("webhooks", help="send the webhooks of finished jobs (supervisord's `webhooks`)")
    worker = sub.add_parser("worker", help="run one worker process")
    worker.add_argument("--slot", type=int, default=0, help="process slot; gives a stable consumer name")
    demo = sub.add_parser("demo", help="build a demo mosaic through the running web app")
    demo.add_argument("--grid", default="64")
    demo.add_argument("--tile-px", type=int, default=16)
    demo.add_argument("--friends", action="store_true",
                      help="a local mosaic of a fixture account's friends (bundled fixture network, offline)")
    sub.add_parser("status", help="print the queue and the workers")
    sub.add_parser("preflight", help="check that this node's ports are free before starting it")
    build.add_arguments(sub.add_parser("build", help="make a mosaic locally, without the queue"))
    sub.add_parser("warm-kernels", help="compile every kernel into this checkout's Numba cache (make deps runs it)")
    sub.add_parser("dead", help="list the dead letters: jobs that failed too often")
    sub.add_parser("watchdog", help="run the watchdog (a supervisord event listener)")
    retry = sub.add_parser("retry", help="put a dead-lettered job back on the queue")
    retry.add_argument("job_id")
    probe = sub.add_parser("probe", help="health checks: `probe worker` exits 0 when a worker on this node has a "
                                         "fresh heartbeat")
    probe.add_argument("what", choices=["worker"])
    probe.add_argument("--node", help="the node to ask about (default: this node's name, settings `node`)")
    if plugins:
        for plugin in entry_points(group=PLUGINS):
            plugin.load()(sub)
    return parser


def _instance_arguments(parser: argparse.ArgumentParser, port_default: str, required: bool = False) -> None:
    """--port and --data-dir: one of several Redis or Sentinel instances on one machine (`make ha-demo`)."""
    parser.add_argument("--port", type=int, required=required, help=f"port to listen on (default: {port_default})")
    parser.add_argument("--data-dir", help="its folder: conf, ACL file, data (default: redis.data_dir)")


def _instance(args: argparse.Namespace, settings: Settings) -> RedisSettings:
    """The Redis settings with --port and --data-dir applied."""
    from urllib.parse import urlsplit

    redis = settings.redis
    if args.port:
        parts = urlsplit(redis.url)
        netloc = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
        redis = dataclasses.replace(redis, url=parts._replace(netloc=f"{netloc}:{args.port}").geturl())
    if args.data_dir:
        redis = dataclasses.replace(redis, data_dir=str(Path(args.data_dir).resolve()))
    return redis


def _address(value: str | None) -> tuple[str, int] | None:
    return None if value is None else sentinel_address(value)


def _wants_plugins(argv: Sequence[str]) -> bool:
    """Whether the command named in ``argv`` may be a plugin's (looking them up costs a start about 50 ms)."""
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif word in ("-h", "--help"):
            return True
        elif not word.startswith("-"):
            return word not in BUILTIN
    return True


@guarded
def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code (an unexpected exception is logged and gives RET_INTERNAL)."""
    args = _parser(plugins=_wants_plugins(sys.argv[1:] if argv is None else argv)).parse_args(argv)
    if args.command in SERVICES or getattr(args, "service", False):
        logs.setup(args.command)
    else:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "init":
        return _init(Path(args.path))
    try:
        settings = config.load(config.locate(args.config))
        if args.command not in NO_SECRETS:
            settings.require_secrets(signing=False)  # only the web app signs input URLs
    except config.ConfigError as exc:
        print(f"tessera: {exc}", file=sys.stderr)
        return RET_CONFIG
    code = _run(args, settings)
    if args.command == "build" and argv is None:
        # A one-shot command, all written and closed: skip the interpreter's teardown, which spends 0.2-0.3 s in
        # Numba's and LLVM's finalisers after parallel kernels ran (a third of a warm build's own time).
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _init(path: Path) -> int:
    from workers.cli.local_config import LocalConfigError, ensure_secrets

    existed = path.exists()
    try:
        added = ensure_secrets(path)
    except (LocalConfigError, OSError) as exc:
        print(f"tessera init: {exc}", file=sys.stderr)
        return RET_CONFIG
    if not existed:
        print(f"wrote {path} (generated secrets, mode 0600)")
    elif added:
        print(f"added to {path}: {', '.join(added)} (running processes see them after a restart: "
              "`make stop && make demo`)")
    else:
        print(f"kept {path}: no secret missing")
    return RET_OK


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command in ("redis", "sentinel"):
        from workers.service.redis_server import exec_redis, exec_sentinel

        try:
            if args.command == "redis":
                exec_redis(_instance(args, settings), _address(args.replica_of))
            exec_sentinel(_instance(args, settings), args.port, _address(args.primary), args.quorum)
        except ValueError as exc:  # a bad HOST:PORT
            print(f"tessera {args.command}: {exc}", file=sys.stderr)
            return RET_CONFIG
    if args.command == "keeper":
        from workers.service.keeper import Keeper

        keeper = Keeper(settings)
        keeper.install_signal_handlers()
        return keeper.run()
    if args.command == "webhooks":
        from workers.service.webhooks import Sender

        try:
            sender = Sender(settings)
        except ValueError as exc:  # webhooks.secret missing or malformed
            print(f"tessera webhooks: {exc}", file=sys.stderr)
            return RET_CONFIG
        sender.install_signal_handlers()
        return sender.run()
    if args.command == "worker":
        prepare_kernels()
        from workers.service.daemon import Worker

        worker = Worker(settings, slot=args.slot)
        worker.install_signal_handlers()
        return worker.run()
    if args.command == "demo":
        if args.friends:
            from workers.cli.demo_friends import run_demo_friends

            return run_demo_friends(settings, grid=args.grid, tile_px=args.tile_px)
        from workers.cli.demo import run_demo

        return run_demo(settings, grid=args.grid, tile_px=args.tile_px)
    if args.command == "preflight":
        from workers.cli.preflight import check_ports

        problems = check_ports(settings)
        for line in problems:
            print(f"tessera preflight: {line}", file=sys.stderr)
        return RET_ERROR if problems else RET_OK
    if args.command == "build":
        return build.run(args, settings)
    if args.command == "warm-kernels":
        warm_kernels()
        return RET_OK
    if args.command in ("dead", "retry"):
        from workers.cli.deadletters import print_dead, retry
        from workers.protocol.connection import connect
        from workers.protocol.keys import Keys

        r, keys = connect(settings.redis, "admin"), Keys(settings.redis.prefix)
        if args.command == "dead":
            return print_dead(r, keys)
        from workers.protocol.signing import UrlSigner

        signer = UrlSigner.from_settings(settings.web) if settings.web.signing_key else None  # fresh input URLs
        if retry(r, keys, args.job_id, signer):
            print(f"job {args.job_id} is queued again")
            return RET_OK
        print(f"tessera retry: no dead letter for job {args.job_id}", file=sys.stderr)
        return RET_ERROR
    if args.command == "watchdog":
        from workers.service.watchdog import Watchdog

        return Watchdog(settings).run()
    if args.command == "status":
        from workers.cli.status import print_status

        return print_status(settings)
    if args.command == "probe":
        from workers.cli.probe import probe_worker

        return probe_worker(settings, args.node)
    if hasattr(args, "run"):
        return int(args.run(args, settings))
    return RET_ERROR


if __name__ == "__main__":
    sys.exit(main())
