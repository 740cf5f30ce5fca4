"""hookstream's HTTP API (``hookstream api``): FastAPI on uvicorn.

    app.py       create_app(settings, **injected): routers, error handlers, the body guard
    problems.py  Problem and the RFC 9457 problem+json handlers
    auth.py      Caller and the dependencies caller / tenant_of / admin_only; per-key rate limit
    keys.py      API keys: the store the CLI (`hookstream api-keys`) and the API share
    context.py   ApiContext: settings, engine, stores, publisher shared by the routes
    health.py    /healthz, /readyz

Resource modules (events, event_types, endpoints, messages, dlq) each export ``router`` and are
mounted under /v1 by ``create_app`` when present. Route handlers parse input, call one service
function, and shape the answer; no logic lives in them.
"""
