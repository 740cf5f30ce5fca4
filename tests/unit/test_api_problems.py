"""Every error of the API is application/problem+json, and nothing unexpected leaks internals."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from hookstream.core.errors import BrokerError, ConfigError, NotFoundError
from hookstream.schemas import InvalidEventError
from hookstream.shell.api.app import create_app
from hookstream.shell.api.problems import Problem
from tests.unit.api_helpers import Api, assert_problem


class Body(BaseModel):
    url: str
    count: int


@pytest.fixture
def api(tmp_path) -> Api:
    api = Api(tmp_path)
    router = APIRouter()

    @router.post("/v1/probe/body")
    async def body(doc: Body) -> dict:
        return doc.model_dump()

    @router.get("/v1/probe/query")
    async def query(limit: int = Query(50, le=250)) -> dict:
        return {"limit": limit}

    @router.get("/v1/probe/raise/{what}")
    async def raising(what: str) -> dict:
        raise {
            "problem": Problem(409, "conflict", "already there", "name"),
            "not_found": NotFoundError("no subscription sub_1"),
            "invalid_event": InvalidEventError("payment.received: data.amount is wrong", code="schema", field="data.amount"),
            "broker": BrokerError("broker at 10.0.0.5:9092 is down"),
            "config": ConfigError("HOOKSTREAM_DATABASE_URL: postgresql://u:pw@db is wrong"),
            "bug": RuntimeError("the database password is hunter2"),
        }[what]

    @router.post("/v1/probe/read")
    async def read(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    api.app.include_router(router)
    return api


async def test_unknown_path_and_wrong_method_are_problems(api):
    async with api.client() as client:
        assert_problem(await client.get("/v1/nothing-here"), 404, "not_found")
        wrong = await client.delete("/healthz")
    assert_problem(wrong, 405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET"


async def test_a_body_that_is_not_json_is_400_and_a_wrong_field_422_naming_it(api):
    async with api.client() as client:
        bad_json = await client.post("/v1/probe/body", content=b'{"url": ', headers={"content-type": "application/json"})
        wrong_field = await client.post("/v1/probe/body", json={"url": "x", "count": "many"})
        too_big = await client.get("/v1/probe/query", params={"limit": 251})
    assert_problem(bad_json, 400, "invalid_json")
    assert_problem(wrong_field, 422, "validation_error", "count")
    assert_problem(too_big, 422, "validation_error", "limit")


@pytest.mark.parametrize("what, status, code, field", [
    ("problem", 409, "conflict", "name"),
    ("not_found", 404, "not_found", None),
    ("invalid_event", 422, "invalid_event", "data.amount"),
    ("broker", 503, "broker_unavailable", None),
    ("config", 500, "internal_error", None),
    ("bug", 500, "internal_error", None),
])
async def test_errors_of_the_service_layer_map_to_statuses_without_internals(api, what, status, code, field):
    async with api.client() as client:
        response = await client.get(f"/v1/probe/raise/{what}")
    doc = assert_problem(response, status, code, field)
    for secret in ("10.0.0.5", "hunter2", "pw@db", "Traceback"):
        assert secret not in response.text
    if status == 503:
        assert response.headers["retry-after"] == "5"
    assert doc.get("field") == field


async def test_a_body_over_the_limit_is_413_by_content_length_or_by_what_arrives(tmp_path, monkeypatch):
    monkeypatch.setattr("hookstream.shell.api.app.MAX_BODY_BYTES", 1000)
    api = Api(tmp_path)
    router = APIRouter()

    @router.post("/v1/probe/read")
    async def read(request: Request) -> dict:
        return {"bytes": len(await request.body())}

    api.app.include_router(router)

    async def chunks():
        for _ in range(20):
            yield b"x" * 100

    async with api.client() as client:
        ok = await client.post("/v1/probe/read", content=b"x" * 1000)
        declared = await client.post("/v1/probe/read", content=b"x" * 1001)
        streamed = await client.post("/v1/probe/read", content=chunks())  # chunked: no Content-Length
    assert ok.json() == {"bytes": 1000}
    assert_problem(declared, 413, "too_large")
    assert_problem(streamed, 413, "too_large")


def test_the_app_builds_without_broker_or_database(tmp_path):
    from hookstream.core.settings import Settings

    app = create_app(Settings(state_dir=tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    assert app.openapi()["openapi"].startswith("3.1")
