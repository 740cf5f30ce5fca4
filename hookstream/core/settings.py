"""Settings, read from ``HOOKSTREAM_*`` environment variables when asked for (never at import).

``Settings`` (pydantic-settings) holds every tunable of every command and worker, each with its
one default, written here and nowhere else: CLI options that change a setting default to None
and fall back to it. Every variable is documented in the README.

- ``Settings.from_env()`` (or ``from_env(mapping)``) reads the environment; the CLI's root
  callback calls it once per command and hands the result down. Everything else takes a
  ``Settings``.
- ``Settings(field=value, ...)`` builds one from its keyword arguments and the defaults only
  (tests, embedding): it never reads the environment. Settings are immutable (a pydantic model,
  not a dataclass): ``settings.model_copy(update={"topic_prefix": "x."})`` is a changed copy.
- ``default_of(field)``: a setting's parsed default, for classes a stage builds on its own.
- ``setting_from_env(field)``: one setting from the environment, for library code that has no
  ``Settings`` handed to it (a service calling ``add_to_outbox``); other variables are not read.

A value that does not parse is a ``ConfigError`` of one line naming the variable and what is
wrong (pydantic's ``ValidationError`` never reaches the user).
"""

from __future__ import annotations

import contextvars
import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from hookstream.core.errors import ConfigError
from hookstream.core.time import duration_seconds as _seconds  # the one duration parser
from hookstream.core.time import parse_duration  # noqa: F401 (importable from here too)

# The Kafka release the local broker runs (jars from Maven Central). Checked against
# faust-streaming + aiokafka + confluent-kafka by the integration suite.
KAFKA_VERSION = "4.4.0"

DEFAULT_RETRY_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h"

# The largest event (its serialised envelope) hookstream accepts. Well under Kafka's default
# message limit (1 MiB, `message.max.bytes`), so a delivery record (the event plus its routing
# fields and a bounded attempt history) always fits on the `deliveries`, retry and dead-letter
# topics. Svix and Stripe advise payloads far smaller (< 20 KB); Convoy caps at 50 KB.
DEFAULT_MAX_EVENT_BYTES = 256 * 1024
# Above this an event could not travel as a delivery record on a broker with default limits.
MAX_EVENT_BYTES_CEILING = 768 * 1024
# The delivery worker's in-flight bounds (records per process, requests and records per endpoint).
MAX_CONCURRENCY = 1_000_000

# The mapping ``from_env`` reads (None: ``Settings(...)`` reads no environment at all).
_ENV: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("hookstream_env", default=None)


def parse_bootstrap(bootstrap: str) -> tuple[str, int]:
    """The first ``host:port`` of a bootstrap list."""
    first = bootstrap.split(",")[0].strip()
    if first.startswith("["):  # [::1]:9092
        host, _, port = first[1:].partition("]:")
    else:
        host, _, port = first.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(
            f"HOOKSTREAM_KAFKA_BOOTSTRAP: {bootstrap!r} is not host:port (e.g. 127.0.0.1:9092)"
        )
    return host, int(port)


PortRanges = tuple[tuple[int, int], ...]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def format_port_ranges(ranges: PortRanges) -> str:
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


# --- parsers of the variables' text (a value given as a keyword already typed passes through) ---


def _duration(value: Any) -> Any:
    return _seconds(value) if isinstance(value, str) else value


def _positive_duration(value: Any) -> Any:
    seconds = _duration(value)
    if isinstance(seconds, (int, float)) and seconds <= 0:
        raise ValueError(f"{value!r} must be longer than 0 (e.g. 5m)")
    return seconds


def _flag(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    if text in ("0", "false", "no", "off"):
        return False
    if text in ("1", "true", "yes", "on"):
        return True
    raise ValueError(f"{value!r} is not a boolean (use 1 or 0)")


def _networks(value: Any) -> Any:
    if not isinstance(value, str):
        return tuple(value)
    nets = []
    for item in (i.strip() for i in value.split(",")):
        if item:
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not a CIDR network (e.g. 10.0.0.0/8)") from None
    return tuple(nets)


def _port_ranges(value: Any) -> Any:
    """``"443,8443"`` or ``"443, 8000-8999"`` -> ((443, 443), (8000, 8999)); empty -> () (any port)."""
    if not isinstance(value, str):
        return tuple(tuple(r) for r in value)
    ranges = []
    for item in (i.strip() for i in value.split(",")):
        if not item:
            continue
        low, dash, high = (part.strip() for part in item.partition("-"))
        high = high if dash else low
        if not (low.isdigit() and high.isdigit() and 1 <= int(low) <= int(high) <= 65535):
            raise ValueError(f"{item!r} is not a port or a range of ports from 1 to 65535 (e.g. 443,8443,9000-9099)")
        ranges.append((int(low), int(high)))
    return tuple(ranges)


def _schedule(value: Any) -> Any:
    if not isinstance(value, str):
        return tuple(value)
    delays = tuple(_seconds(d) for d in value.split(",") if d.strip())
    if not delays:
        raise ValueError(f"{value!r} holds no delay (e.g. {DEFAULT_RETRY_SCHEDULE})")
    return delays


def _ratio(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        ratio = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        ratio = -1.0
    if not 0 < ratio <= 1:
        raise ValueError(f"{text!r} is not a share of failures above 0 and at most 1 (e.g. 0.7 or 70%)")
    return ratio


def _whole(what: str, low: int, high: int):
    """Text of a whole number from ``low`` to ``high`` (digits only: no sign, no exponent). A
    number given as a keyword is taken as it is (tests set values beyond what a user may)."""
    def check(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if not (value.strip().isdigit() and low <= int(value) <= high):
            raise ValueError(f"{value!r} is not {what}")
        return int(value)
    return check


def _listen_host(value: Any) -> Any:  # HOOKSTREAM_API_HOST
    if isinstance(value, str) and not re.fullmatch(r"[A-Za-z0-9.:_-]+", value.strip()):
        raise ValueError(f"{value!r} is not an address to listen on (e.g. 127.0.0.1 or 0.0.0.0)")
    return value.strip() if isinstance(value, str) else value


def _rate(value: Any) -> Any:  # HOOKSTREAM_API_RATE_LIMIT: requests per second per key, 0 = off
    if not isinstance(value, str):
        return value
    try:
        rate = float(value.strip().removesuffix("/s"))
    except ValueError:
        rate = -1.0
    if not 0 <= rate < float("inf"):
        raise ValueError(f"{value!r} is not requests per second per key (e.g. 100; 0 turns the limit off)")
    return rate


def _path(value: Any) -> Any:
    return Path(value).expanduser() if isinstance(value, str) else value


def _env_state_home() -> Path:
    env = _ENV.get() or os.environ
    return Path(env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")) / "hookstream"


def _env_cache_home() -> Path:
    env = _ENV.get() or os.environ
    return Path(env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")) / "hookstream"


Duration = Annotated[float, BeforeValidator(_duration)]
PositiveDuration = Annotated[float, BeforeValidator(_positive_duration)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Concurrency = Annotated[int, BeforeValidator(_whole(f"a whole number from 1 to {MAX_CONCURRENCY}", 1, MAX_CONCURRENCY))]
PathValue = Annotated[Path, BeforeValidator(_path)]


def _var(name: str, default: Any = ..., **kw: Any) -> Any:
    """A setting read from the variable ``name`` (set by that name or the field's, as a keyword)."""
    return Field(default, validation_alias=name, **kw)


class _MappingSource(EnvSettingsSource):
    """The environment source over a given mapping; values stripped, blank ones unset."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._mapping = env
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k.lower(): v.strip() for k, v in self._mapping.items()
                if k.upper().startswith("HOOKSTREAM_") and v and v.strip()}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True,
        extra="forbid",
        validate_by_name=True,  # Settings(kafka_bootstrap=...) as well as the variable's name
        validate_by_alias=True,
        validate_default=True,  # the defaults below are written as a user writes them, and parsed
        enable_decoding=False,  # lists are comma-separated text, not JSON
        case_sensitive=False,
    )

    kafka_bootstrap: str = _var("HOOKSTREAM_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    # local broker data, logs, pid files; the default SQLite database
    state_dir: PathValue = _var("HOOKSTREAM_STATE_DIR", default_factory=_env_state_home)
    cache_dir: PathValue = _var("HOOKSTREAM_CACHE_DIR", default_factory=_env_cache_home)
    database_url: str = _var("HOOKSTREAM_DATABASE_URL",
                             default_factory=lambda data: f"sqlite:///{data['state_dir'] / 'hookstream.db'}")
    topic_prefix: str = _var("HOOKSTREAM_TOPIC_PREFIX", "")
    kafka_version: str = _var("HOOKSTREAM_KAFKA_VERSION", KAFKA_VERSION)
    # Replicas of each topic `topics ensure` creates; 0: min(3, the brokers live when it runs).
    # min.insync.replicas is one less (at least 1), so one broker may be down with acks=all.
    replication_factor: Annotated[int, BeforeValidator(_whole(
        "a replication factor from 1 to 32767, or 0 for min(3, live brokers)", 0, 32767))] = _var(
        "HOOKSTREAM_REPLICATION_FACTOR", 0)
    allow_http: Flag = _var("HOOKSTREAM_ALLOW_HTTP", False)
    allowed_networks: Annotated[tuple[Network, ...], BeforeValidator(_networks)] = _var("HOOKSTREAM_ALLOWED_NETWORKS", ())
    # Ports an endpoint URL may use, as inclusive (low, high) ranges; empty allows every port.
    allowed_ports: Annotated[PortRanges, BeforeValidator(_port_ranges)] = _var("HOOKSTREAM_ALLOWED_PORTS", ())
    retry_schedule: Annotated[tuple[float, ...], BeforeValidator(_schedule)] = _var("HOOKSTREAM_RETRY_SCHEDULE", DEFAULT_RETRY_SCHEDULE)
    secret_grace_seconds: Duration = _var("HOOKSTREAM_SECRET_GRACE", "24h")
    request_timeout_seconds: Duration = _var("HOOKSTREAM_REQUEST_TIMEOUT", "15s")
    # A 4xx other than 408/429/410 goes straight to the dead-letter topic (the same request will
    # fail the same way); off, it is retried on the schedule like a 5xx.
    dead_letter_client_errors: Flag = _var("HOOKSTREAM_DEAD_LETTER_4XX", True)
    metrics_port: Annotated[int, BeforeValidator(_whole("a port number (0 to 65535)", 0, 65535))] = _var("HOOKSTREAM_METRICS_PORT", 0)
    # Loopback by default: /metrics is unauthenticated. Containers set 0.0.0.0 so Prometheus,
    # in another container, can reach it.
    metrics_host: str = _var("HOOKSTREAM_METRICS_HOST", "127.0.0.1")
    # Serialised event envelopes larger than this are refused at every entry (publishers,
    # outbox, CLI) with a clear error; see DEFAULT_MAX_EVENT_BYTES.
    max_event_bytes: Annotated[int, BeforeValidator(_whole(f"a byte count between 1024 and {MAX_EVENT_BYTES_CEILING}", 1024, MAX_EVENT_BYTES_CEILING))] = _var(
        "HOOKSTREAM_MAX_EVENT_BYTES", DEFAULT_MAX_EVENT_BYTES)
    # Keys sealing signing secrets and header values at rest (hookstream/core/crypto.py): entries
    # ``kid:base64key``, newest first; else the file ``secret_key_file`` names; else a key file
    # made in the state dir. Never in repr, never in an error.
    secret_key: str | None = _var("HOOKSTREAM_SECRET_KEY", None, repr=False)
    secret_key_file: PathValue | None = _var("HOOKSTREAM_SECRET_KEY_FILE", None)
    # The delivery worker's circuit breaker per endpoint (delivery/breaker.py says why these):
    # it opens when this share of the attempts over the window failed, once it saw that many.
    breaker_failure_ratio: Annotated[float, BeforeValidator(_ratio)] = _var("HOOKSTREAM_BREAKER_FAILURE_RATIO", 0.7)
    breaker_min_requests: Annotated[int, BeforeValidator(_whole("a positive whole number of requests", 1, 2**31 - 1))] = _var(
        "HOOKSTREAM_BREAKER_MIN_REQUESTS", 10)
    breaker_window_seconds: PositiveDuration = _var("HOOKSTREAM_BREAKER_WINDOW", "30s")
    breaker_pause_seconds: PositiveDuration = _var("HOOKSTREAM_BREAKER_PAUSE", "30s")
    # How long the delivery worker's attempt log may stay unwritable (database down, locked)
    # before the worker gives up and exits non-zero, rather than holding its records silently.
    attempt_log_max_outage_seconds: PositiveDuration = _var("HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE", "5m")
    # The delivery worker's bounds (`hookstream delivery worker --concurrency` etc. override them):
    # records in flight per process; requests in flight per endpoint; records an endpoint may hold
    # (in flight + waiting) before more are deferred to a retry tier without an attempt.
    delivery_concurrency: Concurrency = _var("HOOKSTREAM_DELIVERY_CONCURRENCY", 2000)
    endpoint_concurrency: Concurrency = _var("HOOKSTREAM_ENDPOINT_CONCURRENCY", 64)
    endpoint_backlog: Concurrency = _var("HOOKSTREAM_ENDPOINT_BACKLOG", 512)
    # `hookstream api` (hookstream/shell/api): where it listens, and each API key's request rate
    # (token bucket: `api_rate_limit` requests/s, 0 = off; up to `api_rate_burst` at once, 0 = a
    # second's worth).
    api_host: Annotated[str, BeforeValidator(_listen_host)] = _var("HOOKSTREAM_API_HOST", "127.0.0.1")
    api_port: Annotated[int, BeforeValidator(_whole("a port number (0 picks a free one)", 0, 65535))] = _var("HOOKSTREAM_API_PORT", 8080)
    api_rate_limit: Annotated[float, BeforeValidator(_rate)] = _var("HOOKSTREAM_API_RATE_LIMIT", 1000.0)
    api_rate_burst: Annotated[int, BeforeValidator(_whole("a whole number of requests (0: a second's worth)", 0, 2**31 - 1))] = _var(
        "HOOKSTREAM_API_RATE_BURST", 0)
    # Failed authentications (no, malformed, unknown or revoked key) one client address may make
    # per minute, at most that many at once, before its requests without a known key get 429.
    api_auth_failure_limit: Annotated[int, BeforeValidator(_whole("a whole number of failures per minute (0: no limit)", 0, 2**31 - 1))] = _var(
        "HOOKSTREAM_API_AUTH_FAILURE_LIMIT", 60)
    # The HTTP server's own bounds (uvicorn, hookstream/shell/cli/api.py): connections and requests
    # at once (more: 503), the listen backlog, how long an idle keep-alive connection stays open,
    # how long a client may take to send a request's headers (a new connection: from connecting),
    # and how large the request line and headers may be (431 above).
    api_limit_concurrency: Annotated[int, BeforeValidator(_whole("a whole number of connections (at least 1)", 1, 2**31 - 1))] = _var(
        "HOOKSTREAM_API_LIMIT_CONCURRENCY", 1000)
    api_backlog: Annotated[int, BeforeValidator(_whole("a whole number of connections (at least 1)", 1, 65535))] = _var(
        "HOOKSTREAM_API_BACKLOG", 2048)
    api_keep_alive_seconds: PositiveDuration = _var("HOOKSTREAM_API_KEEP_ALIVE", "65s")
    api_header_timeout_seconds: PositiveDuration = _var("HOOKSTREAM_API_HEADER_TIMEOUT", "10s")
    # ... and its body, from the end of the headers to the last byte (a trickling client: 408)
    api_body_timeout_seconds: PositiveDuration = _var("HOOKSTREAM_API_BODY_TIMEOUT", "60s")
    api_max_header_bytes: Annotated[int, BeforeValidator(_whole("a byte count between 1024 and 1048576", 1024, 1024 * 1024))] = _var(
        "HOOKSTREAM_API_MAX_HEADER_BYTES", 65536)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        value = value.strip()
        try:
            parse_bootstrap(value)
        except ConfigError:
            raise ValueError(f"{value!r} is not host:port (e.g. 127.0.0.1:9092)") from None
        return value

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9._-]+", value):
            raise ValueError(f"{value!r} may hold only letters, digits, '.', '_' and '-'")
        return value

    @field_validator("metrics_host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.:_-]+", value):
            raise ValueError(f"{value!r} is not an address to listen on (e.g. 127.0.0.1 or 0.0.0.0)")
        return value

    @field_validator("secret_key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None:
            from hookstream.core.crypto import Keyring

            Keyring.parse(value)  # a malformed key fails now, naming the variable (never the key)
        return value

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(_one_line(exc)) from None

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        env = _ENV.get()
        # keywords win over the environment; no .env file, no secrets dir: only what from_env is given
        return (init_settings,) if env is None else (init_settings, _MappingSource(settings_cls, env))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """The settings the environment (or ``env``) gives; ``overrides`` (by field name) win."""
        env = os.environ if env is None else env
        if (env.get("HOOKSTREAM_BREAKER_THRESHOLD") or "").strip():
            # set by someone expecting the old consecutive-failure breaker: say so rather than ignore it
            raise ConfigError(
                "HOOKSTREAM_BREAKER_THRESHOLD is no longer read: the breaker opens on a failure ratio "
                "(HOOKSTREAM_BREAKER_FAILURE_RATIO, HOOKSTREAM_BREAKER_MIN_REQUESTS, HOOKSTREAM_BREAKER_WINDOW); unset it"
            )
        token = _ENV.set(env)
        try:
            return cls(**overrides)
        finally:
            _ENV.reset(token)

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of a setting (``"delivery_concurrency"`` -> ``HOOKSTREAM_DELIVERY_CONCURRENCY``)."""
        return cls.model_fields[field].validation_alias  # type: ignore[return-value]

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        return parse_bootstrap(self.kafka_bootstrap)

    def topic(self, name: str) -> str:
        """A topic's full name: the prefix (for isolating tests and tenants) plus its base name."""
        return f"{self.topic_prefix}{name}"


def _one_line(exc: ValidationError) -> str:
    """pydantic's report -> ``HOOKSTREAM_X: what is wrong`` (the first error; never a secret's value)."""
    error = exc.errors(include_url=False)[0]
    loc = str(error["loc"][0]) if error["loc"] else ""
    field = Settings.model_fields.get(loc)
    name = Settings.variable(loc) if field is not None else loc
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] != "value_error" and field is not None and field.repr:
        message = f"{error.get('input')!r}: {message}"
    return f"{name}: {message}".replace("\n", " ")


def default_of(field: str) -> Any:
    """A setting's default, parsed as ``Settings`` parses it (``"30s"`` -> 30.0). For classes a
    stage builds on its own (the delivery worker's ``Limits``, ``BreakerConfig``), so their
    defaults are this one and never a second copy."""
    info = Settings.model_fields[field]
    return TypeAdapter(Annotated[(info.annotation, *info.metadata)]).validate_python(info.default)


def setting_from_env(field: str, env: Mapping[str, str] | None = None) -> Any:
    """One setting as ``Settings.from_env`` reads it, reading (and failing over) only its variable."""
    env = os.environ if env is None else env
    return _one_setting(field, env.get(Settings.variable(field)) or "")


@functools.lru_cache(maxsize=32)
def _one_setting(field: str, text: str) -> Any:
    return getattr(Settings.from_env({Settings.variable(field): text}), field)
