"""hookstream.settings: the flags the delivery core reads."""

from __future__ import annotations

import pytest

from hookstream.errors import ConfigError
from hookstream.settings import Settings


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
    assert Settings.from_env({"HOOKSTREAM_ALLOW_HTTP": "1"}).allow_http is True


def test_default_retry_schedule_is_svix_like() -> None:
    assert Settings().retry_schedule == (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
