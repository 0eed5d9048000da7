"""The operator console as a person uses it: interactive through a pseudo-terminal, and the
CURVE-protected tcp control endpoint that refuses clients without the key."""

from __future__ import annotations

import os
import pty
import random
import select
import socket
import subprocess
import time
from pathlib import Path

import pytest
import zmq

from ipc.curve import create_console_keys
from tests.conftest import (REPO_ROOT, all_alive, console_request, mm_command, stop_pipeline, wait_pipeline_up,
                            wait_until)

pytestmark = pytest.mark.integration


def start_pipeline(path: Path) -> subprocess.Popen:
    return subprocess.Popen(mm_command("run", "--config", str(path), "--duration", "120", "--quiet"),
                            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Terminal:
    """`mm console` on a pseudo-terminal: type a line, read until a prompt comes back."""

    def __init__(self, config_path: Path) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(mm_command("console", "--config", str(config_path)), cwd=REPO_ROOT,
                                     stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)

    def read_until(self, marker: str, timeout_s: float = 10.0) -> str:
        out = ""
        deadline = time.monotonic() + timeout_s
        while marker not in out:
            left = deadline - time.monotonic()
            assert left > 0, f"no {marker!r} on the terminal; got {out!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                out += os.read(self.master, 65536).decode(errors="replace")
        return out

    def type(self, line: str) -> str:
        os.write(self.master, (line + "\n").encode())
        return self.read_until("mm> ")

    def close(self) -> None:
        os.write(self.master, b"quit\n")
        self.proc.wait(timeout=10)
        os.close(self.master)


def test_interactive_console_set_validates_and_applies(make_config):
    _, path = make_config()
    proc = start_pipeline(path)
    try:
        wait_pipeline_up(proc, path, 30)
        term = Terminal(path)
        try:
            term.read_until("mm> ")
            assert "status" in term.type("help")
            bad = term.type("set quoter.size_lot -5")
            assert "size_lot" in bad and ">= 1" in bad
            unknown = term.type("set quoter.nope 1")
            assert "not a runtime parameter" in unknown
            good = term.type("set quoter.size_lot 300")
            assert "300" in good

            def quoter_uses_new_size() -> bool:
                orders = (console_request(path, "orders") or {}).get("open")
                return bool(orders) and all(o["leaves_lot"] == 300 for o in orders.values())

            wait_until(quoter_uses_new_size, 15, interval_s=0.2, what="the quoter's orders at the new size")
            assert "pipeline" in term.type("status")
        finally:
            term.close()
    finally:
        stop_pipeline(proc)


def _free_port_block(size: int) -> int:
    """A block of `size` free tcp ports below the kernel's ephemeral range (32768 up), so that no
    outgoing connection of a parallel test takes one between this check and the pipeline's bind."""
    for _ in range(50):
        base = random.randrange(20_000, 32_768 - size)
        try:
            socks = []
            for port in range(base, base + size):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                socks.append(sock)
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError("no free block of tcp ports")


def _raw_request(address: str, configure=None) -> bytes | None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    if configure:
        configure(sock)
    sock.connect(address)
    sock.send(b'{"command": "status", "args": []}')
    reply = sock.recv() if sock.poll(1500) else None
    sock.close(linger=0)
    ctx.term()
    return reply


def test_curve_tcp_console_refuses_clients_without_the_key(make_config, tmp_path: Path):
    keys = tmp_path / "keys"
    create_console_keys(keys)
    base = _free_port_block(20)
    config, path = make_config(ipc={"transport": "tcp", "tcp_base_port": base, "curve_keys_dir": str(keys)})
    proc = start_pipeline(path)
    try:
        wait_pipeline_up(proc, path, 30, what="pipeline up over tcp with CURVE")
        from ipc.endpoints import endpoint

        address = endpoint(config, "control")
        assert _raw_request(address) is None  # plain client: no handshake, no reply

        def stranger(sock: zmq.Socket) -> None:
            public, secret = zmq.curve_keypair()
            sock.curve_publickey, sock.curve_secretkey = public, secret
            sock.curve_serverkey = (keys / "server.key").read_text().split('public-key = "')[1].split('"')[0].encode()

        assert _raw_request(address, stranger) is None  # right server key, unauthorised client key
        assert all_alive(path)  # the operator's keys still work
    finally:
        stop_pipeline(proc)
