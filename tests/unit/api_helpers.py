"""Helpers for the API's in-process tests: an app on a temporary SQLite database, keys, a client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from hookstream.core.db import make_engine, migrate
from hookstream.core.settings import Settings
from hookstream.shell.api.app import create_app
from hookstream.shell.api.keys import ApiKeyStore


class Api:
    """An app with its store, a tenant key (acme), another tenant's key (globex) and an admin key."""

    def __init__(self, tmp_path: Path, **injected: Any) -> None:
        settings_kw = injected.pop("settings_kw", {})
        self.settings = Settings(state_dir=tmp_path / "state", database_url=f"sqlite:///{tmp_path / 'api.db'}", **settings_kw)
        self.engine = make_engine(self.settings.database_url)
        migrate(self.engine)
        self.keys = ApiKeyStore(self.engine)
        self.app = create_app(self.settings, engine=self.engine, key_store=self.keys, **injected)
        self.acme = self.keys.create(tenant_id="acme", name="acme")[1]
        self.globex = self.keys.create(tenant_id="globex")[1]
        self.admin = self.keys.create(admin=True)[1]

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
        return httpx.AsyncClient(transport=transport, base_url="http://api.test")

    @staticmethod
    def auth(key: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}", **headers}


def assert_problem(response: httpx.Response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    doc = response.json()
    assert doc["status"] == status and doc["code"] == code and doc["type"] == f"urn:hookstream:problem:{code}", doc
    assert isinstance(doc["title"], str) and isinstance(doc["detail"], str) and "\n" not in doc["detail"]
    if field is not None:
        assert doc.get("field") == field, doc
    return doc
