"""The local Hyperliquid venue's signature check: who signed this `/exchange` body?

A venue never trusts a signature's claims; it rebuilds the signed hash from the body it received
and recovers the signer's address from `{r, s, v}` (HYPERLIQUID.md §7). The hash is rebuilt here
independently of the gateway's signer (`processes.hyperliquid_adapter.HyperliquidSigner`, which
goes through ccxt's EIP-712 encoder): the EIP-712 struct hashes are written out by hand, only
msgpack (ccxt's bundled copy) and keccak are shared, so a wrong pre-image on either side makes
the venue recover some other address (§7.3) instead of agreeing with it.

- L1 actions (order, cancel, modify, scheduleCancel, ...): connectionId = keccak(msgpack(action) ‖
  nonce:u64be ‖ 0x00 | 0x01 ‖ vault[20] ‖ [0x00 ‖ expiresAfter:u64be]); the phantom agent
  `Agent{source: "a"|"b", connectionId}` signed under domain Exchange / 1 / 1337 / 0x0.
- User-signed actions (approveAgent, §7.2): the action's own fields under domain
  HyperliquidSignTransaction / 1 / signatureChainId / 0x0, primary type
  `HyperliquidTransaction:<Name>`.
r and s are read as numbers (the SDK writes them unpadded, ccxt padded).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ccxt.static_dependencies import keccak
from ccxt.static_dependencies.msgpack import packb

from processes.hyperliquid_adapter import recover_address

EXCHANGE_CHAIN_ID = 1337
_EIP712_DOMAIN = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
_AGENT = b"Agent(string source,bytes32 connectionId)"

# user-signed actions the venue accepts: action type -> (primary type, [(field, EIP-712 type)])
USER_SIGNED = {
    "approveAgent": ("HyperliquidTransaction:ApproveAgent",
                     [("hyperliquidChain", "string"), ("agentAddress", "address"), ("agentName", "string"),
                      ("nonce", "uint64")]),
}


class SignatureError(ValueError):
    """The body's signature cannot be read or recovers no address."""


def _keccak(data: bytes) -> bytes:
    return bytes(keccak.SHA3(data))


@lru_cache(maxsize=16)  # constant per domain: keccak here is pure Python (~0.3 ms a hash)
def _domain_separator(name: str, chain_id: int) -> bytes:
    return _keccak(_keccak(_EIP712_DOMAIN) + _keccak(name.encode()) + _keccak(b"1")
                   + chain_id.to_bytes(32, "big") + bytes(32))


def _u64(value: object, what: str) -> bytes:
    if type(value) is not int or not 0 <= value < 1 << 64:
        raise SignatureError(f"{what} must be an unsigned 64-bit integer, was {value!r}")
    return value.to_bytes(8, "big")


_AGENT_HEAD = {is_mainnet: _keccak(_AGENT) + _keccak(b"a" if is_mainnet else b"b") for is_mainnet in (True, False)}


def connection_id(action: dict, nonce: int, vault_address: str | None, expires_after: int | None) -> bytes:
    data = bytes(packb(action)) + _u64(nonce, "nonce")
    if vault_address is None:
        data += b"\x00"
    else:
        data += b"\x01" + address_bytes(vault_address)
    if expires_after is not None:
        data += b"\x00" + _u64(expires_after, "expiresAfter")
    return _keccak(data)


def l1_preimage(action: dict, nonce: int, vault_address: str | None, expires_after: int | None,
                is_mainnet: bool) -> bytes:
    """`0x1901 ‖ domainSeparator ‖ hashStruct(Agent)`: what the signer's key signed (keccak of it)."""
    struct_hash = _keccak(_AGENT_HEAD[is_mainnet] + connection_id(action, nonce, vault_address, expires_after))
    return b"\x19\x01" + _domain_separator("Exchange", EXCHANGE_CHAIN_ID) + struct_hash


def user_signed_preimage(action: dict) -> bytes:
    primary, fields = USER_SIGNED[action["type"]]
    try:
        chain_id = int(str(action["signatureChainId"]), 16)
    except (KeyError, ValueError):
        raise SignatureError("user-signed action needs signatureChainId as hex") from None
    type_text = f"{primary}({','.join(f'{kind} {name}' for name, kind in fields)})"
    encoded = _keccak(type_text.encode())
    for name, kind in fields:
        value = action.get(name, "" if kind == "string" else None)  # the SDK drops an empty agentName
        if kind == "string":
            if not isinstance(value, str):
                raise SignatureError(f"'{name}' must be a string")
            encoded += _keccak(value.encode())
        elif kind == "address":
            encoded += bytes(12) + address_bytes(value if isinstance(value, str) else "")
        else:  # uint64
            encoded += bytes(24) + _u64(value, name)
    return b"\x19\x01" + _domain_separator("HyperliquidSignTransaction", chain_id) + _keccak(encoded)


def address_bytes(address: str) -> bytes:
    text = address.lower() if isinstance(address, str) else ""
    if len(text) != 42 or not text.startswith("0x"):
        raise SignatureError(f"address must be 0x + 40 hex digits, was {address!r}")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise SignatureError(f"address must be 0x + 40 hex digits, was {address!r}") from None


def recover_signer(body: dict[str, Any], is_mainnet: bool = True) -> str:
    """The lower-case address that signed an `/exchange` body (L1 or user-signed), or SignatureError."""
    action = body.get("action")
    signature = body.get("signature")
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise SignatureError("body has no action with a type")
    if not isinstance(signature, dict) or not all(k in signature for k in ("r", "s", "v")):
        raise SignatureError("body has no signature {r, s, v}")
    if action["type"] in USER_SIGNED:
        preimage = user_signed_preimage(action)
    else:
        preimage = l1_preimage(action, body.get("nonce"), body.get("vaultAddress"), body.get("expiresAfter"),
                               is_mainnet)
    try:
        r, s = int(str(signature["r"]), 16), int(str(signature["s"]), 16)
        if not (0 < r < 1 << 256 and 0 < s < 1 << 256):
            raise ValueError("r and s must be 1..2^256-1")
        return recover_address(preimage, {"r": hex(r), "s": hex(s), "v": int(signature["v"])})
    except (ValueError, TypeError) as e:  # coincurve raises ValueError for an unrecoverable signature
        raise SignatureError(f"signature does not recover an address: {e}") from None
