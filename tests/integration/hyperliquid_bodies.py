"""What our gateway may sign for Hyperliquid, checked on the bodies `mm venue --market hyperliquid`
received (its test / paper-only `GET /_mm/state`): only the trading actions, order wires with
exactly the signed keys, and nowhere a builder fee, a referrer or an approval (HYPERLIQUID.md §9:
ccxt's defaults send `approveBuilderFee`, `setReferrer` and attach `builder` to every order)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

TRADING_ACTIONS = frozenset({"order", "cancel", "cancelByCloid", "modify", "batchModify", "scheduleCancel"})
ORDER_WIRE_KEYS = ("a", "b", "p", "s", "r", "t", "c")
_FORBIDDEN_WORDS = ("builder", "referr", "approve")


def venue_state(http: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{http}/_mm/state", timeout=5) as reply:
        return json.loads(reply.read())


def _forbidden_keys(node: Any, path: str) -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if any(word in str(key).lower() for word in _FORBIDDEN_WORDS):
                found.append(f"{path}.{key}")
            found += _forbidden_keys(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _forbidden_keys(value, f"{path}[{i}]")
    return found


def _order_wires(action: dict) -> list[Any]:
    if action.get("type") == "order":
        return list(action.get("orders") or ())
    if action.get("type") == "modify":
        return [action.get("order")]
    if action.get("type") == "batchModify":
        return [m.get("order") if isinstance(m, dict) else m for m in action.get("modifies") or ()]
    return []


def body_problems(entries: list[dict]) -> list[str]:
    """Every way the logged bodies break the rule, one line each (empty: all clean)."""
    problems = []
    for i, entry in enumerate(entries):
        body = entry.get("body")
        action = body.get("action") if isinstance(body, dict) else None
        if not isinstance(action, dict):
            problems.append(f"body {i}: not a signed action body: {str(body)[:120]}")
            continue
        kind = action.get("type")
        if kind not in TRADING_ACTIONS:
            problems.append(f"body {i}: action {kind!r} is not a trading action")
        problems += [f"body {i}: {key}" for key in _forbidden_keys(body, "body")]
        for wire in _order_wires(action):
            if not isinstance(wire, dict) or tuple(wire) != ORDER_WIRE_KEYS:
                problems.append(f"body {i}: order wire keys {list(wire) if isinstance(wire, dict) else wire!r}")
    return problems


def action_types(entries: list[dict]) -> list[str]:
    return [e["body"]["action"].get("type") for e in entries
            if isinstance(e.get("body"), dict) and isinstance(e["body"].get("action"), dict)]
