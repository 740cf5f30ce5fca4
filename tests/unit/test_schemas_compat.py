"""Published schema versions are frozen: only optional fields may be added to them."""

import copy
import json
from pathlib import Path

import pytest

from hookstream import schemas
from hookstream.schemas import CURRENT_VERSIONS, EVENT_TYPES, breaking_changes, get_schema, json_schema

PUBLISHED = Path(schemas.__file__).parent / "published"
SNAPSHOTS = sorted(PUBLISHED.glob("*.json"))


def _name(path: Path) -> tuple[str, int]:
    event_type, version = path.name.removesuffix(".json").rsplit(".v", 1)
    return event_type, int(version)


@pytest.mark.parametrize("snapshot", SNAPSHOTS, ids=lambda p: p.name)
def test_published_version_has_no_breaking_change(snapshot):
    event_type, version = _name(snapshot)
    published = json.loads(snapshot.read_text())
    problems = breaking_changes(published, json_schema(event_type, version))
    assert problems == [], (
        f"{event_type} v{version} was published; these changes break it: {problems}. "
        "Add a new version instead (and publish it: hookstream schemas show TYPE > schemas/published/TYPE.vN.json)"
    )


def test_every_current_version_is_published():
    published = {_name(p) for p in SNAPSHOTS}
    assert {(t, CURRENT_VERSIONS[t]) for t in EVENT_TYPES} <= published


def _payment() -> dict:
    return json_schema("payment.received")


def _data(doc: dict) -> dict:
    return doc["properties"]["data"]


def test_removing_a_required_field_is_breaking():
    new = _payment()
    del _data(new)["properties"]["amount"]
    _data(new)["required"].remove("amount")
    assert breaking_changes(_payment(), new) == ["data.amount: required field removed or renamed"]


def test_renaming_a_required_field_is_breaking():
    new = _payment()
    props = _data(new)["properties"]
    props["total_amount"] = props.pop("amount")
    _data(new)["required"] = ["total_amount" if f == "amount" else f for f in _data(new)["required"]]
    problems = breaking_changes(_payment(), new)
    assert "data.amount: required field removed or renamed" in problems
    assert "data.total_amount: new required field" in problems


def test_changing_a_field_type_is_breaking():
    new = _payment()
    _data(new)["properties"]["amount"] = {"type": "number"}
    assert any(p.startswith("data.amount: type changed from 'string' to 'number'") for p in breaking_changes(_payment(), new))


def test_adding_an_optional_field_is_compatible():
    new = _payment()
    _data(new)["properties"]["memo"] = {"type": "string", "maxLength": 200}
    assert breaking_changes(_payment(), new) == []


def test_adding_a_required_field_is_breaking():
    new = _payment()
    _data(new)["properties"]["memo"] = {"type": "string"}
    _data(new)["required"].append("memo")
    assert breaking_changes(_payment(), new) == ["data.memo: new required field"]


def test_making_a_required_field_optional_is_breaking():
    new = _payment()
    _data(new)["required"].remove("currency")
    assert breaking_changes(_payment(), new) == ["data.currency: no longer required"]


def test_dropping_an_enum_value_is_breaking_but_adding_one_is_not():
    narrower = _payment()
    _data(narrower)["properties"]["method"]["enum"].remove("cash")
    assert breaking_changes(_payment(), narrower) == ["data.method: enum no longer allows ['cash']"]
    wider = _payment()
    _data(wider)["properties"]["method"]["enum"].append("crypto")
    assert breaking_changes(_payment(), wider) == []


def test_changes_inside_array_items_are_found():
    old = json_schema("sales_order.created")
    new = copy.deepcopy(old)
    _data(new)["properties"]["lines"]["items"]["properties"]["quantity"]["type"] = "number"
    assert any(p.startswith("data.lines[].quantity: type changed") for p in breaking_changes(old, new))


def test_tightening_a_bound_is_breaking_and_loosening_is_not():
    tighter = _payment()
    _data(tighter)["properties"]["reference"]["maxLength"] = 35
    assert breaking_changes(_payment(), tighter) == ["data.reference: maxLength lowered to 35"]
    looser = _payment()
    _data(looser)["properties"]["reference"]["maxLength"] = 500
    assert breaking_changes(_payment(), looser) == []


def test_the_published_snapshot_is_the_schema_as_served():
    # the snapshots are what `hookstream schemas show` printed when the version was published
    for snapshot in SNAPSHOTS:
        event_type, version = _name(snapshot)
        assert json.loads(snapshot.read_text())["$id"] == get_schema(event_type, version).document()["$id"]
