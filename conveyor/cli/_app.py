"""Shared state of one CLI invocation: settings, a lazily built client, output helpers."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

import click
from rich.console import Console

from conveyor.client import Client
from conveyor.config import Settings


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


pass_app = click.make_pass_decorator(App)
