"""CURVE keys for the control endpoint over tcp (ZeroMQ's CurveZMQ, zguide ch. 5 "Ironhouse").

`mm keys console --dir D` writes D/server.key(_secret) and D/console.key(_secret), and copies the
console's public key into D/authorized/. Risk serves the control REP as a CURVE server and lets
in only clients whose public key is in D/authorized/ (a ZAP authenticator thread); the console
connects with its own keypair. A client without the keys cannot even complete the handshake.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from mm.errors import ConfigError

SERVER = "server"
CONSOLE = "console"


def create_console_keys(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    authorized = directory / "authorized"
    authorized.mkdir(exist_ok=True, mode=0o700)
    server_public, server_secret = zmq.auth.create_certificates(directory, SERVER)
    console_public, console_secret = zmq.auth.create_certificates(directory, CONSOLE)
    shutil.copy(console_public, authorized / Path(console_public).name)
    for path in (server_secret, console_secret):
        Path(path).chmod(0o600)
    return {"server_public": Path(server_public), "console_secret": Path(console_secret), "authorized": authorized}


def _load(directory: Path, name: str, secret: bool) -> tuple[bytes, bytes | None]:
    path = directory / (f"{name}.key_secret" if secret else f"{name}.key")
    if not path.is_file():
        raise ConfigError(f"CURVE key {path} is missing: create the keys with `mm keys console --dir {directory}`")
    return zmq.auth.load_certificate(path)


def make_server(sock: zmq.Socket, ctx: zmq.Context, directory: Path) -> ThreadAuthenticator:
    """Turn `sock` (before bind) into a CURVE server admitting only authorized console keys."""
    public, secret = _load(directory, SERVER, secret=True)
    auth = ThreadAuthenticator(ctx)
    auth.start()
    auth.configure_curve(domain="*", location=str(directory / "authorized"))
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True
    return auth


def make_client(sock: zmq.Socket, directory: Path) -> None:
    """Give the console's REQ socket (before connect) its keypair and the server's public key."""
    public, secret = _load(directory, CONSOLE, secret=True)
    server_public, _ = _load(directory, SERVER, secret=False)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_public
