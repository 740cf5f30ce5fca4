"""Breaking-change detection between two versions of an event's JSON Schema.

A published version may gain optional fields and nothing else. Everything below breaks readers
or writers of the old version, so it needs a new version instead:

- a field removed or renamed (a rename is a removal plus an addition);
- a field becoming required, or a required field becoming optional (readers rely on it);
- a changed ``type``, ``const``, ``pattern`` or ``format``; fewer ``enum`` values;
- tighter bounds (``minLength``, ``maxLength``, ``minItems``, ``maxItems``, ``minimum``, ``maximum``);
- an open object closed (``additionalProperties: false``).
"""

from __future__ import annotations

from typing import Any

_EXACT = ("type", "const", "pattern", "format")
_LOWER_BOUNDS = ("minLength", "minItems", "minimum")
_UPPER_BOUNDS = ("maxLength", "maxItems", "maximum")


def breaking_changes(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    """Every way ``new`` breaks ``old``, one line each (empty when ``new`` is compatible)."""
    where = path or "(root)"
    problems: list[str] = []
    for key in _EXACT:
        if old.get(key) != new.get(key):
            problems.append(f"{where}: {key} changed from {old.get(key)!r} to {new.get(key)!r}")
    if "enum" in old and "enum" in new:  # dropping the enum altogether widens it
        dropped = [v for v in old["enum"] if v not in new["enum"]]
        if dropped:
            problems.append(f"{where}: enum no longer allows {dropped!r}")
    for key in _LOWER_BOUNDS:
        if key in new and new[key] > old.get(key, float("-inf")):
            problems.append(f"{where}: {key} raised to {new[key]!r}")
    for key in _UPPER_BOUNDS:
        if key in new and new[key] < old.get(key, float("inf")):
            problems.append(f"{where}: {key} lowered to {new[key]!r}")
    if old.get("additionalProperties", True) is not False and new.get("additionalProperties", True) is False:
        problems.append(f"{where}: no longer allows additional properties")

    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    old_req, new_req = set(old.get("required", ())), set(new.get("required", ()))
    for name, sub in old_props.items():
        child = f"{path}.{name}" if path else name
        if name not in new_props:
            what = "required field" if name in old_req else "field"
            problems.append(f"{child}: {what} removed or renamed")
            continue
        if name in old_req and name not in new_req:
            problems.append(f"{child}: no longer required")
        problems += breaking_changes(sub, new_props[name], child)
    for name in sorted(new_req - old_req):
        child = f"{path}.{name}" if path else name
        problems.append(f"{child}: became required" if name in old_props else f"{child}: new required field")
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        problems += breaking_changes(old["items"], new["items"], f"{path}[]")
    return problems
