"""The CLI's bootstrap state: the ``Settings`` of one command run, read once.

The root callback (``hookstream.shell.cli``) puts a ``CliState`` on the typer context; a command
takes ``ctx: typer.Context`` and asks ``settings_of(ctx)``, then hands those settings to whatever
it calls. The environment is read on first use, not in the callback, so ``--help`` and commands
that need no settings (``schemas list``, ``secrets new-key``) still work when a variable is bad;
every command that does need them gets the same object, and a bad variable is one ``error:`` line.
"""

from __future__ import annotations

from collections.abc import Mapping

import typer

from hookstream.core.settings import Settings


class CliState:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._env = env
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env(self._env)
        return self._settings


def settings_of(ctx: typer.Context) -> Settings:
    """The settings of this command run (a command mounted outside the root app gets its own)."""
    state = ctx.find_object(CliState)
    if state is None:
        state = ctx.ensure_object(CliState)
    return state.settings


def setting_help(field: str) -> str:
    """``"HOOKSTREAM_X, <its default>"`` for an option's help: an option that changes a setting
    defaults to None (the setting's value), so the help says where that comes from."""
    return f"{Settings.variable(field)}, {Settings.model_fields[field].default}"
