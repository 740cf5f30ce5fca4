from pathlib import Path

import pytest

from hookstream.core.errors import ConfigError
from hookstream.core.settings import Settings, parse_duration


def test_defaults_are_local():
    s = Settings.from_env({"HOME": "/home/u"})
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.topic_prefix == ""
    assert s.database_url == f"sqlite:///{s.state_dir / 'hookstream.db'}"
    assert s.retry_schedule == (5, 300, 1800, 7200, 18000, 36000, 36000)


def test_environment_overrides_each_setting(tmp_path):
    s = Settings.from_env(
        {
            "HOOKSTREAM_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
            "HOOKSTREAM_STATE_DIR": str(tmp_path),
            "HOOKSTREAM_DATABASE_URL": "postgresql+psycopg://u@h/db",
            "HOOKSTREAM_TOPIC_PREFIX": "tenant-a.",
            "HOOKSTREAM_RETRY_SCHEDULE": "1s, 250ms,2m",
            "HOOKSTREAM_ALLOW_HTTP": "1",
            "HOOKSTREAM_ALLOWED_NETWORKS": "127.0.0.0/8, ::1/128",
        }
    )
    assert s.kafka_host_port == ("127.0.0.1", 19092)
    assert s.state_dir == Path(tmp_path)
    assert s.database_url == "postgresql+psycopg://u@h/db"
    assert s.topic("events.payment") == "tenant-a.events.payment"
    assert s.retry_schedule == (1.0, 0.25, 120.0)
    assert s.allow_http is True
    assert [str(n) for n in s.allowed_networks] == ["127.0.0.0/8", "::1/128"]


def test_state_dir_defaults_to_database_location(tmp_path):
    s = Settings.from_env({"HOOKSTREAM_STATE_DIR": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path}/hookstream.db"


@pytest.mark.parametrize(
    "name,value,needle",
    [
        ("HOOKSTREAM_KAFKA_BOOTSTRAP", "localhost", "not host:port"),
        ("HOOKSTREAM_KAFKA_BOOTSTRAP", "h:99999", "not host:port"),
        ("HOOKSTREAM_TOPIC_PREFIX", "bad prefix!", "letters, digits"),
        ("HOOKSTREAM_RETRY_SCHEDULE", "5s,soon", "'soon' is not a duration"),
        ("HOOKSTREAM_ALLOW_HTTP", "maybe", "not a boolean"),
        ("HOOKSTREAM_ALLOWED_NETWORKS", "10.0.0.0/33", "not a CIDR"),
        ("HOOKSTREAM_METRICS_PORT", "http", "not a port"),
    ],
)
def test_bad_values_name_the_variable(name, value, needle):
    with pytest.raises(ConfigError) as err:
        Settings.from_env({name: value})
    assert name in str(err.value) and needle in str(err.value)


def test_reading_settings_happens_when_called_not_at_import(monkeypatch):
    monkeypatch.setenv("HOOKSTREAM_TOPIC_PREFIX", "later.")
    assert Settings.from_env().topic_prefix == "later."


@pytest.mark.parametrize("text,seconds", [("5s", 5), ("5m", 300), ("2h", 7200), ("250ms", 0.25), ("1d", 86400), ("7", 7)])
def test_parse_duration(text, seconds):
    assert parse_duration(text, name="X") == seconds

def test_4xx_goes_to_dead_letter_by_default() -> None:
    assert Settings.from_env({}).dead_letter_client_errors is True
    assert Settings().dead_letter_client_errors is True


@pytest.mark.parametrize("value", ["0", "false", "no", "off", "OFF"])
def test_dead_lettering_4xx_can_be_turned_off(value: str) -> None:
    assert Settings.from_env({"HOOKSTREAM_DEAD_LETTER_4XX": value}).dead_letter_client_errors is False


def test_dead_letter_4xx_flag_refuses_a_non_boolean() -> None:
    with pytest.raises(ConfigError, match="HOOKSTREAM_DEAD_LETTER_4XX"):
        Settings.from_env({"HOOKSTREAM_DEAD_LETTER_4XX": "maybe"})


def test_other_flags_still_default_to_off() -> None:
    assert Settings.from_env({}).allow_http is False


def test_metrics_listen_on_loopback_unless_told_otherwise() -> None:
    assert Settings.from_env({}).metrics_host == "127.0.0.1"
    assert Settings.from_env({"HOOKSTREAM_METRICS_HOST": "0.0.0.0"}).metrics_host == "0.0.0.0"


def test_metrics_host_refuses_a_url() -> None:
    with pytest.raises(ConfigError, match="HOOKSTREAM_METRICS_HOST"):
        Settings.from_env({"HOOKSTREAM_METRICS_HOST": "http://0.0.0.0/"})


def test_max_event_bytes_defaults_well_under_the_broker_limit() -> None:
    s = Settings.from_env({})
    assert s.max_event_bytes == 256 * 1024
    assert Settings.from_env({"HOOKSTREAM_MAX_EVENT_BYTES": "65536"}).max_event_bytes == 65536


@pytest.mark.parametrize("value", ["0", "-5", "1k", "1023", "2000000"])
def test_max_event_bytes_refuses_what_could_not_travel(value: str) -> None:
    with pytest.raises(ConfigError, match="HOOKSTREAM_MAX_EVENT_BYTES"):
        Settings.from_env({"HOOKSTREAM_MAX_EVENT_BYTES": value})


def test_secret_key_settings_are_read_and_checked_without_echoing_the_key(tmp_path):
    from hookstream.core.crypto import new_key_entry

    entry = new_key_entry("k2") + "," + new_key_entry("k1")
    s = Settings.from_env({"HOOKSTREAM_SECRET_KEY": entry, "HOOKSTREAM_SECRET_KEY_FILE": str(tmp_path / "key")})
    assert s.secret_key == entry and s.secret_key_file == tmp_path / "key"
    assert entry not in repr(s)
    assert Settings.from_env({}).secret_key is None and Settings.from_env({}).secret_key_file is None
    bad = "k1:" + "QUJD" * 4  # 12 bytes
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"HOOKSTREAM_SECRET_KEY": bad})
    assert "HOOKSTREAM_SECRET_KEY" in str(err.value) and "QUJD" not in str(err.value)


def test_breaker_defaults_are_convoys_ratio_with_a_30s_window() -> None:
    s = Settings.from_env({})
    assert (s.breaker_failure_ratio, s.breaker_min_requests, s.breaker_window_seconds, s.breaker_pause_seconds) == (0.7, 10, 30.0, 30.0)


def test_breaker_settings_are_read_from_the_environment() -> None:
    s = Settings.from_env({
        "HOOKSTREAM_BREAKER_FAILURE_RATIO": "80%", "HOOKSTREAM_BREAKER_MIN_REQUESTS": "25",
        "HOOKSTREAM_BREAKER_WINDOW": "2m", "HOOKSTREAM_BREAKER_PAUSE": "45",
    })
    assert (s.breaker_failure_ratio, s.breaker_min_requests, s.breaker_window_seconds, s.breaker_pause_seconds) == (0.8, 25, 120.0, 45.0)
    assert Settings.from_env({"HOOKSTREAM_BREAKER_FAILURE_RATIO": "0.5"}).breaker_failure_ratio == 0.5


@pytest.mark.parametrize(
    "name,value,needle",
    [
        ("HOOKSTREAM_BREAKER_FAILURE_RATIO", "0", "above 0 and at most 1"),
        ("HOOKSTREAM_BREAKER_FAILURE_RATIO", "1.5", "above 0 and at most 1"),
        ("HOOKSTREAM_BREAKER_FAILURE_RATIO", "most", "above 0 and at most 1"),
        ("HOOKSTREAM_BREAKER_MIN_REQUESTS", "0", "positive whole number"),
        ("HOOKSTREAM_BREAKER_MIN_REQUESTS", "ten", "positive whole number"),
        ("HOOKSTREAM_BREAKER_WINDOW", "0s", "longer than 0"),
        ("HOOKSTREAM_BREAKER_WINDOW", "soon", "not a duration"),
        ("HOOKSTREAM_BREAKER_PAUSE", "-1", "not a duration"),
        ("HOOKSTREAM_BREAKER_THRESHOLD", "20", "no longer read"),
    ],
)
def test_bad_breaker_values_name_the_variable(name, value, needle) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({name: value})
    assert name in str(err.value) and needle in str(err.value)


def test_attempt_log_max_outage_defaults_to_five_minutes_and_reads_a_duration() -> None:
    assert Settings.from_env({}).attempt_log_max_outage_seconds == 300.0
    assert Settings.from_env({"HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE": "90s"}).attempt_log_max_outage_seconds == 90.0
    assert Settings.from_env({"HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE": "250ms"}).attempt_log_max_outage_seconds == 0.25


@pytest.mark.parametrize("value", ["0", "0s", "soon", "-1m"])
def test_attempt_log_max_outage_refuses_what_is_not_a_positive_duration(value: str) -> None:
    with pytest.raises(ConfigError, match="HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE"):
        Settings.from_env({"HOOKSTREAM_ATTEMPT_LOG_MAX_OUTAGE": value})


def test_allowed_ports_default_to_any() -> None:
    assert Settings.from_env({}).allowed_ports == ()


def test_allowed_ports_take_ports_and_ranges() -> None:
    s = Settings.from_env({"HOOKSTREAM_ALLOWED_PORTS": "443, 8443,9000-9099"})
    assert s.allowed_ports == ((443, 443), (8443, 8443), (9000, 9099))


@pytest.mark.parametrize("value", ["https", "0", "65536", "9100-9000", "443-", "1-2-3", "-443"])
def test_allowed_ports_refuse_what_is_not_a_port(value: str) -> None:
    with pytest.raises(ConfigError, match="HOOKSTREAM_ALLOWED_PORTS") as err:
        Settings.from_env({"HOOKSTREAM_ALLOWED_PORTS": value})
    assert repr(value) in str(err.value) and "\n" not in str(err.value)


# --- one settings object: every tunable, each default once, read only by from_env ---

REPO = Path(__file__).resolve().parents[2]
WORKER_TUNABLES = {
    "HOOKSTREAM_DELIVERY_CONCURRENCY": ("delivery_concurrency", 2000),
    "HOOKSTREAM_ENDPOINT_CONCURRENCY": ("endpoint_concurrency", 64),
    "HOOKSTREAM_ENDPOINT_BACKLOG": ("endpoint_backlog", 512),
}


def test_every_setting_has_its_variable_and_one_default_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for field, info in Settings.model_fields.items():
        name = Settings.variable(field)
        assert name.startswith("HOOKSTREAM_"), field
        assert not info.is_required(), f"{field} has no default"
        assert f"`{name}`" in readme, f"{name} is not in the README's table"
    assert len({Settings.variable(f) for f in Settings.model_fields}) == len(Settings.model_fields)


def test_the_delivery_workers_tunables_are_settings() -> None:
    s = Settings.from_env({})
    assert {name: getattr(s, field) for name, (field, _) in WORKER_TUNABLES.items()} == {
        name: default for name, (_, default) in WORKER_TUNABLES.items()}
    s = Settings.from_env({"HOOKSTREAM_DELIVERY_CONCURRENCY": "100", "HOOKSTREAM_ENDPOINT_CONCURRENCY": " 8 ",
                           "HOOKSTREAM_ENDPOINT_BACKLOG": "32"})
    assert (s.delivery_concurrency, s.endpoint_concurrency, s.endpoint_backlog) == (100, 8, 32)


@pytest.mark.parametrize("name", sorted(WORKER_TUNABLES))
@pytest.mark.parametrize("value", ["0", "-1", "ten", "1e3", "1000001", "2.5"])
def test_bad_worker_tunables_are_one_line_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({name: value})
    message = str(err.value)
    assert message.startswith(f"{name}: {value!r}") and "from 1 to 1000000" in message and "\n" not in message


@pytest.mark.parametrize(
    "name,value",
    [("HOOKSTREAM_REQUEST_TIMEOUT", "soon"), ("HOOKSTREAM_SECRET_GRACE", "1 week"), ("HOOKSTREAM_ALLOWED_PORTS", "x"),
     ("HOOKSTREAM_ALLOWED_NETWORKS", "nope"), ("HOOKSTREAM_RETRY_SCHEDULE", ","), ("HOOKSTREAM_BREAKER_FAILURE_RATIO", "lots")],
)
def test_every_bad_value_is_a_config_error_of_one_line(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({name: value})
    assert str(err.value).startswith(f"{name}: ") and "\n" not in str(err.value)
    assert "validation error" not in str(err.value) and "pydantic" not in str(err.value)


def test_blank_variables_mean_the_default() -> None:
    assert Settings.from_env({"HOOKSTREAM_METRICS_PORT": "", "HOOKSTREAM_DELIVERY_CONCURRENCY": "  "}) == Settings.from_env({})


def test_keyword_construction_reads_no_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("HOOKSTREAM_TOPIC_PREFIX", "env.")
    monkeypatch.setenv("HOOKSTREAM_DELIVERY_CONCURRENCY", "7")
    s = Settings(state_dir=tmp_path, retry_schedule=(1.0, 2.0))
    assert s.topic_prefix == "" and s.delivery_concurrency == 2000 and s.retry_schedule == (1.0, 2.0)
    assert s.database_url == f"sqlite:///{tmp_path}/hookstream.db"
    assert Settings.from_env().delivery_concurrency == 7


def test_keyword_values_that_do_not_fit_are_config_errors_too() -> None:
    with pytest.raises(ConfigError, match="^HOOKSTREAM_METRICS_PORT: 'http' is not a port number"):
        Settings(metrics_port="http")
    with pytest.raises(ConfigError, match="^HOOKSTREAM_SECRET_KEY") as err:
        Settings(secret_key="k1:" + "QUJD" * 4)
    assert "QUJD" not in str(err.value)


def test_from_env_overrides_win_over_the_environment() -> None:
    s = Settings.from_env({"HOOKSTREAM_TOPIC_PREFIX": "a."}, topic_prefix="b.")
    assert s.topic_prefix == "b."


def test_settings_are_immutable_and_copied_with_changes() -> None:
    s = Settings()
    with pytest.raises(Exception):
        s.topic_prefix = "x."  # type: ignore[misc]
    assert s.model_copy(update={"max_event_bytes": 2048}).max_event_bytes == 2048 and s.max_event_bytes == 256 * 1024


def test_nothing_but_settings_reads_hookstream_variables() -> None:
    # the CLI's worker options used to read their own variables (typer envvar=) with defaults of
    # their own; every variable now goes through Settings, and each default is written there only
    sources = [p for p in (REPO / "hookstream" / "shell").rglob("*.py")]
    offenders = [str(p) for p in sources if "envvar=" in p.read_text()]
    assert offenders == []


def test_one_setting_is_read_from_the_environment_without_the_others() -> None:
    from hookstream.core.settings import setting_from_env

    assert setting_from_env("max_event_bytes", {}) == 256 * 1024
    # a bad variable it does not read is not its concern (the outbox must not fail over it)
    assert setting_from_env("max_event_bytes", {"HOOKSTREAM_MAX_EVENT_BYTES": "2048", "HOOKSTREAM_KAFKA_BOOTSTRAP": "nope"}) == 2048
    with pytest.raises(ConfigError, match=r"^HOOKSTREAM_MAX_EVENT_BYTES: 'x' is not a byte count"):
        setting_from_env("max_event_bytes", {"HOOKSTREAM_MAX_EVENT_BYTES": "x"})
