"""Settings, read from ``HOOKSTREAM_*`` environment variables when asked for (never at import).

Every variable is documented in the README. ``Settings.from_env()`` is the only place that reads
the environment; everything else takes a ``Settings``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path

from hookstream.core.errors import ConfigError
from hookstream.core.time import parse_duration  # the one duration parser (importable from here too)

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


def _default_state_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "hookstream"


def _default_cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hookstream"


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}: {value!r} is not a boolean (use 1 or 0)")


def _networks(env: Mapping[str, str], name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    nets = []
    for item in env.get(name, "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(f"{name}: {item!r} is not a CIDR network (e.g. 10.0.0.0/8)") from None
    return tuple(nets)


PortRanges = tuple[tuple[int, int], ...]


def _port_ranges(env: Mapping[str, str], name: str) -> PortRanges:
    """``"443,8443"`` or ``"443, 8000-8999"`` -> ((443, 443), (8000, 8999)); empty -> () (any port)."""
    ranges = []
    for item in env.get(name, "").split(","):
        item = item.strip()
        if not item:
            continue
        low, dash, high = (part.strip() for part in item.partition("-"))
        high = high if dash else low
        if not (low.isdigit() and high.isdigit() and 1 <= int(low) <= int(high) <= 65535):
            raise ConfigError(f"{name}: {item!r} is not a port or a range of ports from 1 to 65535 (e.g. 443,8443,9000-9099)")
        ranges.append((int(low), int(high)))
    return tuple(ranges)


def format_port_ranges(ranges: PortRanges) -> str:
    return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    state_dir: Path = dataclasses.field(default_factory=lambda: _default_state_dir(os.environ))
    cache_dir: Path = dataclasses.field(default_factory=lambda: _default_cache_dir(os.environ))
    database_url: str = ""
    topic_prefix: str = ""
    kafka_version: str = KAFKA_VERSION
    allow_http: bool = False
    allowed_networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    # Ports an endpoint URL may use, as inclusive (low, high) ranges; empty allows every port.
    allowed_ports: PortRanges = ()
    retry_schedule: tuple[float, ...] = ()
    secret_grace_seconds: float = 24 * 3600.0
    request_timeout_seconds: float = 15.0
    # A 4xx other than 408/429/410 goes straight to the dead-letter topic (the same request will
    # fail the same way); off, it is retried on the schedule like a 5xx.
    dead_letter_client_errors: bool = True
    metrics_port: int = 0
    # Loopback by default: /metrics is unauthenticated. Containers set 0.0.0.0 so Prometheus,
    # in another container, can reach it.
    metrics_host: str = "127.0.0.1"
    # Serialised event envelopes larger than this are refused at every entry (publishers,
    # outbox, CLI) with a clear error; see DEFAULT_MAX_EVENT_BYTES.
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    # Keys sealing signing secrets and header values at rest (hookstream/core/crypto.py): entries
    # ``kid:base64key``, newest first; else the file ``secret_key_file`` names; else a key file
    # made in the state dir. Never in repr.
    secret_key: str | None = dataclasses.field(default=None, repr=False)
    secret_key_file: Path | None = None
    # The delivery worker's circuit breaker per endpoint (delivery/breaker.py says why these):
    # it opens when this share of the attempts over the window failed, once it saw that many.
    breaker_failure_ratio: float = 0.7
    breaker_min_requests: int = 10
    breaker_window_seconds: float = 30.0
    breaker_pause_seconds: float = 30.0
    # How long the delivery worker's attempt log may stay unwritable (database down, locked)
    # before the worker gives up and exits non-zero, rather than holding its records silently.
    attempt_log_max_outage_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{self.state_dir / 'hookstream.db'}")
        if not self.retry_schedule:
            object.__setattr__(
                self,
                "retry_schedule",
                tuple(parse_duration(d, name="HOOKSTREAM_RETRY_SCHEDULE") for d in DEFAULT_RETRY_SCHEDULE.split(",")),
            )

    @property
    def kafka_host_port(self) -> tuple[str, int]:
        return parse_bootstrap(self.kafka_bootstrap)

    def topic(self, name: str) -> str:
        """A topic's full name: the prefix (for isolating tests and tenants) plus its base name."""
        return f"{self.topic_prefix}{name}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        kw: dict = {}
        if env.get("HOOKSTREAM_KAFKA_BOOTSTRAP"):
            kw["kafka_bootstrap"] = env["HOOKSTREAM_KAFKA_BOOTSTRAP"].strip()
            parse_bootstrap(kw["kafka_bootstrap"])
        kw["state_dir"] = Path(env["HOOKSTREAM_STATE_DIR"]).expanduser() if env.get("HOOKSTREAM_STATE_DIR") else _default_state_dir(env)
        kw["cache_dir"] = Path(env["HOOKSTREAM_CACHE_DIR"]).expanduser() if env.get("HOOKSTREAM_CACHE_DIR") else _default_cache_dir(env)
        if env.get("HOOKSTREAM_DATABASE_URL"):
            kw["database_url"] = env["HOOKSTREAM_DATABASE_URL"].strip()
        prefix = env.get("HOOKSTREAM_TOPIC_PREFIX", "")
        if prefix and not re.fullmatch(r"[A-Za-z0-9._-]+", prefix):
            raise ConfigError(f"HOOKSTREAM_TOPIC_PREFIX: {prefix!r} may hold only letters, digits, '.', '_' and '-'")
        kw["topic_prefix"] = prefix
        if env.get("HOOKSTREAM_KAFKA_VERSION"):
            kw["kafka_version"] = env["HOOKSTREAM_KAFKA_VERSION"].strip()
        kw["allow_http"] = _flag(env, "HOOKSTREAM_ALLOW_HTTP")
        kw["allowed_networks"] = _networks(env, "HOOKSTREAM_ALLOWED_NETWORKS")
        kw["allowed_ports"] = _port_ranges(env, "HOOKSTREAM_ALLOWED_PORTS")
        schedule = env.get("HOOKSTREAM_RETRY_SCHEDULE", "").strip()
        if schedule:
            kw["retry_schedule"] = tuple(
                parse_duration(d, name="HOOKSTREAM_RETRY_SCHEDULE") for d in schedule.split(",") if d.strip()
            )
        if env.get("HOOKSTREAM_SECRET_GRACE"):
            kw["secret_grace_seconds"] = parse_duration(env["HOOKSTREAM_SECRET_GRACE"], name="HOOKSTREAM_SECRET_GRACE")
        if env.get("HOOKSTREAM_REQUEST_TIMEOUT"):
            kw["request_timeout_seconds"] = parse_duration(env["HOOKSTREAM_REQUEST_TIMEOUT"], name="HOOKSTREAM_REQUEST_TIMEOUT")
        kw["dead_letter_client_errors"] = _flag(env, "HOOKSTREAM_DEAD_LETTER_4XX", default=True)
        if env.get("HOOKSTREAM_METRICS_PORT"):
            port = env["HOOKSTREAM_METRICS_PORT"].strip()
            if not port.isdigit() or int(port) > 65535:
                raise ConfigError(f"HOOKSTREAM_METRICS_PORT: {port!r} is not a port number")
            kw["metrics_port"] = int(port)
        if env.get("HOOKSTREAM_METRICS_HOST"):
            host = env["HOOKSTREAM_METRICS_HOST"].strip()
            if not re.fullmatch(r"[A-Za-z0-9.:_-]+", host):
                raise ConfigError(f"HOOKSTREAM_METRICS_HOST: {host!r} is not an address to listen on (e.g. 127.0.0.1 or 0.0.0.0)")
            kw["metrics_host"] = host
        if env.get("HOOKSTREAM_MAX_EVENT_BYTES"):
            text = env["HOOKSTREAM_MAX_EVENT_BYTES"].strip()
            if not text.isdigit() or not 1024 <= int(text) <= MAX_EVENT_BYTES_CEILING:
                raise ConfigError(
                    f"HOOKSTREAM_MAX_EVENT_BYTES: {text!r} is not a byte count between 1024 and {MAX_EVENT_BYTES_CEILING}"
                )
            kw["max_event_bytes"] = int(text)
        if env.get("HOOKSTREAM_SECRET_KEY", "").strip():
            from hookstream.core.crypto import Keyring

            kw["secret_key"] = env["HOOKSTREAM_SECRET_KEY"].strip()
            Keyring.parse(kw["secret_key"])  # a malformed key fails now, naming the variable
        if env.get("HOOKSTREAM_SECRET_KEY_FILE", "").strip():
            kw["secret_key_file"] = Path(env["HOOKSTREAM_SECRET_KEY_FILE"].strip()).expanduser()
        kw.update(_breaker(env))
        if env.get("HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE"):
            outage = parse_duration(env["HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE"], name="HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE")
            if outage <= 0:
                raise ConfigError("HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE: must be more than 0 (e.g. 5m)")
            kw["attempt_log_max_outage_seconds"] = outage
        return cls(**kw)


def _breaker(env: Mapping[str, str]) -> dict:
    """The ``HOOKSTREAM_BREAKER_*`` settings that are set, checked."""
    if env.get("HOOKSTREAM_BREAKER_THRESHOLD"):
        # set by someone expecting the old consecutive-failure breaker: say so rather than ignore it
        raise ConfigError(
            "HOOKSTREAM_BREAKER_THRESHOLD is no longer read: the breaker opens on a failure ratio "
            "(HOOKSTREAM_BREAKER_FAILURE_RATIO, HOOKSTREAM_BREAKER_MIN_REQUESTS, HOOKSTREAM_BREAKER_WINDOW); unset it"
        )
    kw: dict = {}
    if text := env.get("HOOKSTREAM_BREAKER_FAILURE_RATIO", "").strip():
        try:
            ratio = float(text.removesuffix("%")) / (100 if text.endswith("%") else 1)
        except ValueError:
            ratio = -1.0
        if not 0 < ratio <= 1:
            raise ConfigError(f"HOOKSTREAM_BREAKER_FAILURE_RATIO: {text!r} is not a share of failures above 0 and at most 1 (e.g. 0.7 or 70%)")
        kw["breaker_failure_ratio"] = ratio
    if text := env.get("HOOKSTREAM_BREAKER_MIN_REQUESTS", "").strip():
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(f"HOOKSTREAM_BREAKER_MIN_REQUESTS: {text!r} is not a positive whole number of requests")
        kw["breaker_min_requests"] = int(text)
    for name, field in (("HOOKSTREAM_BREAKER_WINDOW", "breaker_window_seconds"), ("HOOKSTREAM_BREAKER_PAUSE", "breaker_pause_seconds")):
        if text := env.get(name, "").strip():
            seconds = parse_duration(text, name=name)
            if seconds <= 0:
                raise ConfigError(f"{name}: {text!r} must be longer than 0")
            kw[field] = seconds
    return kw
