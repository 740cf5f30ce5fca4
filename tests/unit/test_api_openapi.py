"""The OpenAPI document: 3.1, served at /openapi.json, and the same as the committed
docs/openapi.json (regenerate with `hookstream api openapi > docs/openapi.json`)."""

from __future__ import annotations

import json
from pathlib import Path

from hookstream.shell.cli.api import openapi_document
from tests.unit.api_helpers import Api

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


async def test_the_served_document_is_the_committed_one(tmp_path):
    api = Api(tmp_path)
    async with api.client() as client:
        served = (await client.get("/openapi.json")).json()
    committed = json.loads(COMMITTED.read_text())
    assert served == committed, "docs/openapi.json is stale: run `hookstream api openapi > docs/openapi.json`"
    assert COMMITTED.read_text() == openapi_document()  # byte for byte, as the command writes it


def test_it_is_openapi_3_1_with_the_bearer_scheme_and_problem_responses():
    doc = json.loads(COMMITTED.read_text())
    assert doc["openapi"].startswith("3.1.")
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    ingest = doc["paths"]["/v1/events"]["post"]
    assert {"202", "400", "401", "403", "413", "415", "422", "429", "503"} <= set(ingest["responses"])
    assert "application/problem+json" in ingest["responses"]["422"]["content"]
