"""`mm keys`: create and inspect the encrypted API key file; load keys for the gateway.

`mm keys create --out F` reads the key and secret from MM_API_KEY / MM_API_SECRET and the
passphrase from MM_KEYS_PASSPHRASE, prompting (without echo) for any that is unset, and writes F
with mode 0600 (refusing to overwrite unless --force). `mm keys show --file F` opens it and prints
the key id (first and last characters of the API key), never the secret.

Every key or secret this module reads is registered with processes.redaction.RedactSecrets, so it
is masked in every log line of the process from then on.
"""

from __future__ import annotations

import argparse
import getpass
import os
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from ipc.curve import create_console_keys
from mm.errors import KeyFileError
from mm.keys import NONCE_LEN, SALT_LEN, ApiKeys, Secret, decrypt_keys, encrypt_keys
from processes.redaction import RedactSecrets

API_KEY_ENV = "MM_API_KEY"
API_SECRET_ENV = "MM_API_SECRET"
PASSPHRASE_ENV = "MM_KEYS_PASSPHRASE"


class KeysUsageError(Exception):
    """Bad input to `mm keys` (exit 2)."""


def add_keys_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", required=True)
    create = sub.add_parser("create", help="write an encrypted key file (mode 0600)")
    create.add_argument("--out", type=Path, required=True, metavar="F")
    create.add_argument("--force", action="store_true", help="replace an existing file")
    show = sub.add_parser("show", help="print the key id of a key file (never the secret)")
    show.add_argument("--file", type=Path, required=True, metavar="F")
    console = sub.add_parser("console", help="CURVE keys for the console over tcp (ipc.curve_keys_dir)")
    console.add_argument("--dir", type=Path, required=True, metavar="D")


def run_keys(args: argparse.Namespace, environ: Mapping[str, str] | None = None,
             prompt: Callable[[str], str] = getpass.getpass) -> int:
    environ = os.environ if environ is None else environ
    try:
        if args.keys_command == "create":
            return _create(args.out, args.force, environ, prompt)
        if args.keys_command == "console":
            written = create_console_keys(args.dir)
            print(f"CURVE keys in {args.dir}: set [ipc] curve_keys_dir = \"{args.dir}\"; "
                  f"authorized console keys in {written['authorized']}")
            return 0
        if args.keys_command == "show":
            keys = read_key_file(args.file, _passphrase(environ, prompt, confirm=False))
            print(f"key id: {keys.key_id}")
            return 0
        raise KeysUsageError(f"unknown keys command {args.keys_command!r}")
    except KeysUsageError as e:
        print(f"mm keys: {e}", file=sys.stderr)
        return 2
    except (KeyFileError, OSError) as e:
        print(f"mm keys: {e}", file=sys.stderr)
        return 1


def read_key_file(path: Path, passphrase: str) -> ApiKeys:
    """Decrypt the key file at `path` (refusing one readable by group or others)."""
    try:
        mode = path.stat().st_mode
        blob = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"key file {path}: not found") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"key file {path}: readable by others (mode {oct(mode & 0o777)}); chmod 600 it")
    try:
        keys = decrypt_keys(blob, passphrase)
    except KeyFileError as e:
        raise type(e)(f"key file {path}: {e}") from None
    _register(keys.api_key.reveal(), keys.api_secret.reveal())
    return keys


def load_api_keys(*, key_env: str = API_KEY_ENV, secret_env: str = API_SECRET_ENV, key_file: Path | None = None,
                  passphrase_env: str = PASSPHRASE_ENV, environ: Mapping[str, str] | None = None,
                  prompt: Callable[[str], str] | None = None) -> ApiKeys:
    """The gateway's keys: from the two environment variables when both are set, else from the key
    file (passphrase from `passphrase_env`, or the prompt when one is given)."""
    environ = os.environ if environ is None else environ
    api_key, api_secret = environ.get(key_env, ""), environ.get(secret_env, "")
    if api_key and api_secret:
        _register(api_key, api_secret)
        return ApiKeys(Secret(api_key), Secret(api_secret))
    if key_file is None:
        raise KeyFileError(f"no API keys: set {key_env} and {secret_env}, or name a key file")
    passphrase = environ.get(passphrase_env, "")
    if not passphrase:
        if prompt is None:
            raise KeyFileError(f"key file {key_file}: no passphrase ({passphrase_env} is unset)")
        passphrase = prompt(f"passphrase for {key_file}: ")
    return read_key_file(key_file, passphrase)


def _create(out: Path, force: bool, environ: Mapping[str, str], prompt: Callable[[str], str]) -> int:
    if out.exists() and not force:
        raise KeysUsageError(f"{out} exists; use --force to replace it")
    api_key = environ.get(API_KEY_ENV) or prompt("API key: ")
    api_secret = environ.get(API_SECRET_ENV) or prompt("API secret: ")
    if not api_key or not api_secret:
        raise KeysUsageError("the API key and secret must not be empty")
    _register(api_key, api_secret)
    passphrase = _passphrase(environ, prompt, confirm=True)
    blob = encrypt_keys(api_key, api_secret, passphrase, os.urandom(SALT_LEN), os.urandom(NONCE_LEN))
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    print(f"wrote {out} (key id {ApiKeys(Secret(api_key), Secret(api_secret)).key_id})")
    return 0


def _passphrase(environ: Mapping[str, str], prompt: Callable[[str], str], *, confirm: bool) -> str:
    passphrase = environ.get(PASSPHRASE_ENV, "")
    if not passphrase:
        passphrase = prompt("passphrase: ")
        if not passphrase:
            raise KeysUsageError("the passphrase must not be empty")
        if confirm and prompt("passphrase again: ") != passphrase:
            raise KeysUsageError("the passphrases do not match")
    _register(passphrase)
    return passphrase


def _register(*secrets: str) -> None:
    for secret in secrets:
        RedactSecrets.register(secret)
