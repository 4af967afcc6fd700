"""Shared state of one CLI invocation: settings, a lazily built client, output helpers."""

from __future__ import annotations

import functools
import json
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Concatenate, ParamSpec, TypeVar

import click
from rich.console import Console

from conveyor.client import Client
from conveyor.config import Settings
from conveyor.core.errors import AlreadyExistsError, InvalidValueError, NotFoundError

P = ParamSpec("P")
R = TypeVar("R")

#: What the command line got wrong, whichever path found it: exit 2 like click's own usage
#: errors. A job, task or cluster named that does not exist, a name already taken, a value
#: the API refused (InvalidValueError: an unusable URL or setting, an input that does not fit
#: its task). A plain ValueError is not here: the commands turn the ones the API raises for
#: an argument into ``click.BadParameter`` where they pass it, so one reaching this far is a
#: bug and keeps its traceback (conveyor.cli.main).
BAD_INPUT = (NotFoundError, AlreadyExistsError, InvalidValueError)


@dataclass
class App:
    """Built by the root command and passed to every subcommand as ``ctx.obj``."""

    settings: Settings
    verbose: int = 0
    as_json: bool = False
    console: Console = field(default_factory=Console)
    err: Console = field(default_factory=lambda: Console(stderr=True))
    _client: Client | None = None

    @property
    def client(self) -> Client:
        """The client, connected on first use (so `--help` never touches a database)."""
        if self._client is None:
            self._client = Client(settings=self.settings)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def print_json(self, payload: Any) -> None:
        json.dump(payload, sys.stdout, indent=2, default=str, ensure_ascii=False)
        sys.stdout.write("\n")


def usage_error(
    exc: BaseException, ctx: click.Context, *, show_usage: bool = True
) -> click.UsageError:
    """``exc`` as a usage error (exit 2) of the command of ``ctx``, message unchanged; with
    ``-v`` the traceback is printed first."""
    app = ctx.find_object(App)
    if app is not None and app.verbose:
        traceback.print_exception(exc, file=sys.stderr)
    return click.UsageError(str(exc), ctx if show_usage else None)


def pass_app(command: Callable[Concatenate[App, P], R]) -> Callable[P, R]:
    """Pass the invocation's :class:`App` first, and turn the API's refusals of what the
    user typed (:data:`BAD_INPUT`) into usage errors: every path that meets an unknown
    cluster or an oversized input then exits 2, as the checks the CLI makes itself do."""
    passing = click.make_pass_decorator(App)(command)

    @functools.wraps(passing)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return passing(*args, **kwargs)
        except BAD_INPUT as exc:
            raise usage_error(exc, click.get_current_context()) from exc

    return run
