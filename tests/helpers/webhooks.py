"""Webhook receivers on loopback over real TLS (a certificate made for 127.0.0.1, trusted through
``webhooks.ca_file``), and the real sender process (``python -m workers webhooks``)."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from config import Settings


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files): the receiver's, and the CA file the
    sender is told to trust."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tessera-test-receiver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "receiver.pem", folder / "receiver.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@dataclass
class Received:
    """One request; header names in lower case (HTTP's are case-insensitive)."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """Answers each path by its script: a list of statuses taken in order (the last one repeats); a status of 0
    means hang: read the request, answer nothing until :attr:`release` is set; a 3xx redirects to /ok."""

    scripts: dict[str, list[int]]
    received: list[Received] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self, path: str) -> int:
        with self.lock:
            script = self.scripts.get(path, [404])
            return script.pop(0) if len(script) > 1 else script[0]

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]


def serve(receiver: Receiver, cert: Path, key: Path) -> tuple[str, ThreadingHTTPServer]:
    """The receiver on https://127.0.0.1:<free port>; its base URL and server (shut it down at the end)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.lock:
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                                       time.time()))
            code = receiver.next_status(self.path)
            if code == 0:
                receiver.release.wait(timeout=120)
                return
            self.send_response(code)
            if 300 <= code < 400:
                self.send_header("Location", "/ok")  # a redirect to a path that answers 200
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            pass  # a sender that gave up on a hanging answer closed its end

    server = Server(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"https://127.0.0.1:{server.server_address[1]}", server


def sender_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a sender for ``settings`` (as its own Redis role), plus ``TESSERA_*`` overrides."""
    s = settings
    return {**os.environ, "TESSERA_REDIS_URL": s.redis.url, "TESSERA_REDIS_PASSWORD": s.redis.password,
            "TESSERA_REDIS_PREFIX": s.redis.prefix, "TESSERA_PATHS_ROOT": s.paths.root, "TESSERA_NODE": s.node,
            "TESSERA_WEB_PUBLIC_URL": s.web.public_url, "TESSERA_FETCH_ALLOW_HOSTS": ",".join(s.fetch.allow_hosts),
            "TESSERA_CONFIG": "", "PYTHONUNBUFFERED": "1", "TESSERA_WEBHOOKS_SECRET": s.webhooks.secret,
            **{f"TESSERA_REDIS_{role.upper()}_PASSWORD": getattr(s.redis, f"{role}_password")
               for role in ("web", "worker", "orchestrator", "monitor", "webhooks")},
            **extra}


def start_sender(settings: Settings, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    """`tessera webhooks` as supervisord runs it, its JSON log lines in ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "workers", "webhooks"], env=sender_env(settings, **extra),
                                cwd=log.parent, stdout=out, stderr=subprocess.STDOUT)
