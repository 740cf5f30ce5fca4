"""How the management routers (endpoints, messages, dlq) reach the service layer.

``services`` (a FastAPI dependency) hands a route the app's ``Services``: the one injected as
``create_app(settings, services=...)`` (tests), else one made on first use on the context's
settings and engine. It also turns the service layer's ``ConflictError`` into 409 and names the
field of a ``ValidationError`` (its message starts with the field: ``"limit: must be ..."``);
every other error goes to the app's handlers (``problems.py``) unchanged.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

from fastapi import Depends, Request

from hookstream.core.errors import ValidationError
from hookstream.shell.api.context import ApiContext, context
from hookstream.shell.api.problems import Problem, problem_responses
from hookstream.shell.services import ConflictError, Services

_lock = threading.Lock()
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*|Hookstream-Tenant): ")

# what every management route may answer besides its success
PROBLEMS = problem_responses(400, 401, 403, 404, 409, 413, 422, 429, 503)


def _query_names(dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def known_query(request: Request) -> None:
    """Refuse a query parameter the route does not take (a typo like ``?stauts=failed`` would
    otherwise list everything, silently): 422 naming it."""
    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    allowed = _query_names(route.dependant)
    for name in request.query_params.keys():
        if name not in allowed:
            takes = ", ".join(sorted(allowed)) or "none"
            raise Problem(422, "validation_error", f"{name[:64]!r} is not a query parameter of this route (it takes: {takes})", name[:64])


def _services(ctx: ApiContext) -> Services:
    found = ctx.extra.get("services")
    if found is None:
        with _lock:
            found = ctx.extra.get("services")
            if found is None:
                from hookstream.subscriptions import SubscriptionStore

                found = ctx.extra["services"] = Services.open(ctx.settings, store=SubscriptionStore(ctx.settings, ctx.engine))
    return found


def services(ctx: ApiContext = Depends(context)) -> Iterator[Services]:
    svc = _services(ctx)
    try:
        yield svc
    except ConflictError as exc:
        raise Problem(409, "conflict", str(exc)) from None
    except ValidationError as exc:
        if type(exc) is not ValidationError:  # InvalidEventError and kin: the app's handler knows them
            raise
        match = _FIELD.match(str(exc))
        raise Problem(422, "validation_error", str(exc), match.group(1) if match else None) from None
