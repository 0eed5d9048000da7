import argparse
import base64
import io
import json
import logging
import pickle

import pytest

from mm.errors import KeyFileError, KeyFileTamperedError, WrongPassphraseError
from mm.keys import Secret, decrypt_keys, encrypt_keys
from processes.keys_cli import add_keys_arguments, load_api_keys, run_keys
from processes.redaction import RedactSecrets

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
API_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
SALT = bytes(range(16))
NONCE = bytes(range(12))
FAST_N = 2**10  # tests only; the CLI uses 2**15


def key_file_bytes(passphrase: str = "correct horse") -> bytes:
    return encrypt_keys(API_KEY, API_SECRET, passphrase, SALT, NONCE, scrypt_n=FAST_N)


def test_key_file_round_trip():
    keys = decrypt_keys(key_file_bytes(), "correct horse")
    assert (keys.api_key.reveal(), keys.api_secret.reveal()) == (API_KEY, API_SECRET)
    assert keys.key_id == "vmPUZE...Eh8A"


def test_key_file_holds_no_plaintext():
    blob = key_file_bytes()
    assert API_SECRET.encode() not in blob and API_KEY.encode() not in blob


def test_key_file_wrong_passphrase_is_a_clear_error():
    with pytest.raises(WrongPassphraseError, match="wrong passphrase"):
        decrypt_keys(key_file_bytes(), "battery staple")


@pytest.mark.parametrize("field", ["ciphertext", "nonce"])
def test_key_file_tampered_body_is_a_clear_error(field: str):
    doc = json.loads(key_file_bytes())
    raw = bytearray(base64.b64decode(doc[field]))
    raw[0] ^= 1
    doc[field] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(KeyFileTamperedError, match="altered"):
        decrypt_keys(json.dumps(doc).encode(), "correct horse")


def test_key_file_tampered_kdf_header_is_refused():
    doc = json.loads(key_file_bytes())
    doc["kdf"]["n"] = 2**11
    with pytest.raises(WrongPassphraseError):
        decrypt_keys(json.dumps(doc).encode(), "correct horse")
    doc["kdf"]["n"] = 2**30  # would need 1 TiB: refused before deriving
    with pytest.raises(KeyFileError, match="unsupported key derivation"):
        decrypt_keys(json.dumps(doc).encode(), "correct horse")


def test_key_file_garbage_is_a_clear_error():
    with pytest.raises(KeyFileError, match="not a readable key file"):
        decrypt_keys(b"{not json", "correct horse")


def test_secret_repr_str_format_are_redacted():
    secret = Secret(API_SECRET)
    keys = decrypt_keys(key_file_bytes(), "correct horse")
    shown = [repr(secret), str(secret), f"{secret}", f"{secret:>80}", "%s" % secret, repr(keys), repr([secret])]
    assert all(API_SECRET not in text and "***" in text for text in shown)
    assert API_KEY not in repr(keys)
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def redacted_output(emit) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RedactSecrets(set()))
    logger = logging.getLogger("test_keys.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        emit(logger)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_redact_filter_masks_a_registered_secret_in_args_message_and_exception():
    RedactSecrets.register(API_SECRET)

    def emit(logger):
        logger.warning("signing with %s for %r", API_SECRET, {"secret": API_SECRET})
        logger.warning(f"inline {API_SECRET}")
        try:
            raise RuntimeError(f"venue refused key {API_SECRET}")
        except RuntimeError:
            logger.exception("request failed")

    output = redacted_output(emit)
    assert API_SECRET not in output
    assert output.count("***") >= 4 and "RuntimeError" in output


def test_load_api_keys_from_env_registers_them_for_redaction():
    env = {"MM_API_KEY": "envkey-1234567890abcdef", "MM_API_SECRET": "envsecret-9876543210fedcba"}
    keys = load_api_keys(environ=env)
    assert keys.api_secret.reveal() == env["MM_API_SECRET"]
    output = redacted_output(lambda logger: logger.error("using %s", env["MM_API_SECRET"]))
    assert env["MM_API_SECRET"] not in output


def test_load_api_keys_without_env_or_file_is_a_clear_error():
    with pytest.raises(KeyFileError, match="no API keys"):
        load_api_keys(environ={})


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="mm keys")
    add_keys_arguments(parser)
    return parser.parse_args(argv)


def test_cli_create_then_show_prints_key_id_only(tmp_path, capsys):
    path = tmp_path / "binance.keys"
    env = {"MM_API_KEY": API_KEY, "MM_API_SECRET": API_SECRET, "MM_KEYS_PASSPHRASE": "correct horse"}
    assert run_keys(parse("create", "--out", str(path)), environ=env) == 0
    assert path.stat().st_mode & 0o777 == 0o600
    assert run_keys(parse("show", "--file", str(path)), environ={"MM_KEYS_PASSPHRASE": "correct horse"}) == 0
    out, err = capsys.readouterr()
    assert "key id: vmPUZE...Eh8A" in out
    assert API_SECRET not in out + err and API_KEY not in out + err
    keys = load_api_keys(key_file=path, environ={"MM_KEYS_PASSPHRASE": "correct horse"})
    assert keys.api_secret.reveal() == API_SECRET


def test_cli_create_with_prompts_and_refusing_overwrite(tmp_path, capsys):
    path = tmp_path / "k"
    answers = iter([API_KEY, API_SECRET, "pass phrase", "pass phrase"])
    assert run_keys(parse("create", "--out", str(path)), environ={}, prompt=lambda _: next(answers)) == 0
    assert run_keys(parse("create", "--out", str(path)), environ={}, prompt=lambda _: "x") == 2
    assert "exists" in capsys.readouterr().err


def test_cli_show_wrong_passphrase_exits_1_with_one_line(tmp_path, capsys):
    path = tmp_path / "k"
    path.write_bytes(key_file_bytes())
    path.chmod(0o600)
    assert run_keys(parse("show", "--file", str(path)), environ={"MM_KEYS_PASSPHRASE": "nope nope"}) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "wrong passphrase" in err and str(path) in err


def test_cli_show_refuses_a_world_readable_file(tmp_path, capsys):
    path = tmp_path / "k"
    path.write_bytes(key_file_bytes())
    path.chmod(0o644)
    assert run_keys(parse("show", "--file", str(path)), environ={"MM_KEYS_PASSPHRASE": "correct horse"}) == 1
    assert "chmod 600" in capsys.readouterr().err
