"""API keys: the `Secret` type that never prints its value, and the encrypted key file format.

Key file (JSON, one object): scrypt derives 64 bytes from the passphrase and a random salt; the
first 32 are the AES-256-GCM key, the last 32 a check value stored in the file, so a wrong
passphrase is told apart from a tampered file (GCM alone fails the same way for both). The header
(format, version, KDF parameters, salt, check) is the GCM associated data: changing any of it, or
the ciphertext, fails authentication. Salt and nonce come from the caller (the shell's
os.urandom): this module is pure.
"""

from __future__ import annotations

import base64
import binascii
import hmac

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from mm.errors import KeyFileError, KeyFileTamperedError, WrongPassphraseError

MASK = "***"
FORMAT = "mm-keys"
VERSION = 1
SCRYPT_N = 2**15           # ~32 MiB, ~0.1 s per derivation
SALT_LEN = 16
NONCE_LEN = 12


class Secret:
    """A string that shows as *** in repr, str, format, f-strings and tracebacks; `reveal()` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a secret must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> object:
        raise TypeError("a Secret cannot be pickled")


def key_id(api_key: str) -> str:
    """What may be shown of an API key: its first 6 and last 4 characters."""
    return f"{api_key[:6]}...{api_key[-4:]}" if len(api_key) >= 16 else MASK


class ApiKeys:
    __slots__ = ("api_key", "api_secret")

    def __init__(self, api_key: Secret, api_secret: Secret) -> None:
        self.api_key = api_key
        self.api_secret = api_secret

    @property
    def key_id(self) -> str:
        return key_id(self.api_key.reveal())

    def __repr__(self) -> str:
        return f"ApiKeys(key_id={self.key_id!r}, api_secret={self.api_secret!r})"


class _Kdf(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    n: int
    r: int
    p: int
    salt: str


class _KeyFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: str
    version: int
    kdf: _Kdf
    check: str
    nonce: str
    ciphertext: str


class _Plain(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    api_key: str
    api_secret: str


def encrypt_keys(api_key: str, api_secret: str, passphrase: str, salt: bytes, nonce: bytes,
                 *, scrypt_n: int = SCRYPT_N) -> bytes:
    """The key file's bytes for these keys under `passphrase`."""
    if not api_key or not api_secret:
        raise ValueError("the API key and secret must not be empty")
    if not passphrase:
        raise ValueError("the passphrase must not be empty")
    if len(salt) != SALT_LEN or len(nonce) != NONCE_LEN:
        raise ValueError(f"salt and nonce must be {SALT_LEN} and {NONCE_LEN} bytes, were {len(salt)} and {len(nonce)}")
    kdf = _Kdf("scrypt", scrypt_n, 8, 1, _b64(salt))
    _check_kdf(kdf)
    aes_key, check = _derive(passphrase, kdf, salt)
    header = _KeyFile(FORMAT, VERSION, kdf, _b64(check), _b64(nonce), "")
    plain = msgspec.json.encode(_Plain(api_key, api_secret))
    ciphertext = AESGCM(aes_key).encrypt(nonce, plain, _associated_data(header))
    return msgspec.json.encode(msgspec.structs.replace(header, ciphertext=_b64(ciphertext))) + b"\n"


def decrypt_keys(blob: bytes, passphrase: str) -> ApiKeys:
    try:
        file = msgspec.json.decode(blob, type=_KeyFile)
        salt, check, nonce, ciphertext = (_unb64(file.kdf.salt), _unb64(file.check), _unb64(file.nonce),
                                          _unb64(file.ciphertext))
    except (msgspec.DecodeError, binascii.Error, ValueError) as e:
        raise KeyFileError(f"not a readable key file: {e}") from None
    if file.format != FORMAT or file.version != VERSION:
        raise KeyFileError(f"not a key file of this version: format {file.format!r} version {file.version}")
    _check_kdf(file.kdf)
    aes_key, expected_check = _derive(passphrase, file.kdf, salt)
    if not hmac.compare_digest(expected_check, check):
        raise WrongPassphraseError("wrong passphrase (or the file's key-derivation header was altered)")
    try:
        plain = AESGCM(aes_key).decrypt(nonce, ciphertext, _associated_data(msgspec.structs.replace(file, ciphertext="")))
    except InvalidTag:
        raise KeyFileTamperedError("the key file fails authentication: it was altered after it was written") from None
    keys = msgspec.json.decode(plain, type=_Plain)
    return ApiKeys(Secret(keys.api_key), Secret(keys.api_secret))


def _derive(passphrase: str, kdf: _Kdf, salt: bytes) -> tuple[bytes, bytes]:
    material = Scrypt(salt=salt, length=64, n=kdf.n, r=kdf.r, p=kdf.p).derive(passphrase.encode())
    return material[:32], material[32:]


def _check_kdf(kdf: _Kdf) -> None:
    # bounds keep a tampered header from asking for gigabytes of memory
    if kdf.name != "scrypt" or not (2**10 <= kdf.n <= 2**20 and kdf.n & (kdf.n - 1) == 0) \
            or not 1 <= kdf.r <= 32 or not 1 <= kdf.p <= 16:
        raise KeyFileError(f"unsupported key derivation {kdf.name} n={kdf.n} r={kdf.r} p={kdf.p}")


def _associated_data(header: _KeyFile) -> bytes:
    return msgspec.json.encode(header)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
