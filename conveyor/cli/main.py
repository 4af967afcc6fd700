"""The ``conveyor`` command line.

Every command reads its configuration from flags and ``CONVEYOR_*`` environment variables.
Errors print one line naming the problem and the fix; `-v` adds the traceback. Logs are quiet
by default. Exit codes say whose move it is:

* 2: what was typed is wrong, whichever check found it: a malformed or oversized value, a
  setting or URL that cannot work, a job, task or cluster that does not exist, a name that
  is taken. Change the command.
* 1: the command was right but could not be carried out (database or broker unreachable,
  schema behind, a waited-for job failed). Fix the world, or run it again.

Expected errors are conveyor's own (:class:`~conveyor.core.errors.ConveyorError`: the kind
says 2 or 1) and click's usage errors; the commands turn what the API refuses of an argument
into a usage error naming it. Anything else is a bug: its traceback is printed, with a line
saying so, and the exit code is 1.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any

import click

from conveyor import __version__
from conveyor.cli._app import BAD_INPUT, App, usage_error
from conveyor.cli._logging import configure as configure_logging
from conveyor.cli.admin import clusters, db, doctor, runners
from conveyor.cli.demo import demo
from conveyor.cli.jobs import cancel, jobs, retry, submit
from conveyor.cli.ui import ui
from conveyor.cli.worker import monitor, worker
from conveyor.config import Settings, SettingsError
from conveyor.core.errors import ConveyorError

#: Runtime errors shown as one line (exit 1): conveyor's own, whose message names the problem
#: and the fix. Anything else is a bug and shows its traceback.
EXPECTED_ERRORS = (ConveyorError,)
BUG_LINE = (
    "conveyor failed on an unexpected {kind} (a bug): please report it with the traceback above"
)


class ConveyorGroup(click.Group):
    """Turns expected errors into one clear line on stderr, and unexpected ones into their
    traceback and a line saying it is a bug (exit 1 both)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BAD_INPUT as exc:  # commands with `pass_app` raise these as usage errors already
            raise usage_error(exc, ctx, show_usage=False) from exc
        except EXPECTED_ERRORS as exc:
            self._fail(ctx, exc)
        except BrokenPipeError:
            raise  # stdout closed (`conveyor jobs list | head`): click exits quietly
        except Exception as exc:
            self._bug(ctx, exc)

    @staticmethod
    def _fail(ctx: click.Context, exc: BaseException) -> None:
        app = ctx.find_object(App)
        if app is not None and app.verbose:
            traceback.print_exception(exc, file=sys.stderr)
        click.secho(f"Error: {exc}", fg="red", err=True)
        ctx.exit(1)

    @staticmethod
    def _bug(ctx: click.Context, exc: BaseException) -> None:
        traceback.print_exception(exc, file=sys.stderr)
        click.secho(BUG_LINE.format(kind=type(exc).__name__), fg="red", err=True)
        ctx.exit(1)


@click.group(
    "conveyor",
    cls=ConveyorGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, "--version", prog_name="conveyor")
@click.option(
    "--database-url",
    envvar="CONVEYOR_DATABASE_URL",
    metavar="URL",
    help="State store: postgresql://…, sqlite:///path or memory:// "
    "[env CONVEYOR_DATABASE_URL; default: the embedded SQLite file in ~/.conveyor].",
)
@click.option(
    "--broker-url",
    envvar="CONVEYOR_BROKER_URL",
    metavar="URL",
    help="Dispatch: amqp://… (RabbitMQ) or none:// (runners claim from the database) "
    "[env CONVEYOR_BROKER_URL; default none://].",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.option("-v", "--verbose", count=True, help="More logs (-v info, -vv debug) and tracebacks.")
@click.option(
    "--log-format",
    envvar="CONVEYOR_LOG_FORMAT",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text with key=value context, or one JSON object per line "
    "[env CONVEYOR_LOG_FORMAT].",
)
@click.pass_context
def cli(
    ctx: click.Context,
    database_url: str | None,
    broker_url: str | None,
    as_json: bool,
    verbose: int,
    log_format: str,
) -> None:
    """conveyor: workflows of Python tasks, run by any number of task runners.

    \b
    Get going with nothing installed (state lives in ~/.conveyor/conveyor.db):
      conveyor demo                          run a sample workflow and see what happened
      conveyor worker myflows.tasks          start a runner for your task classes
      conveyor submit myflows.tasks:Ingest '"2026-11-28"' --wait
      conveyor jobs list                     then `conveyor jobs show JOB_ID`
    \b
    In production point every process at PostgreSQL and RabbitMQ:
      export CONVEYOR_DATABASE_URL=postgresql://user:pass@db/conveyor
      export CONVEYOR_BROKER_URL=amqp://user:pass@rabbit:5672/
    \b
    Shell completion (bash; zsh/fish alike):
      eval "$(_CONVEYOR_COMPLETE=bash_source conveyor)"
    \b
    Exit codes: 0 done; 2 what was typed is wrong (bad or oversized input, unknown job or
    cluster, unusable URL: fix the command); 1 the world failed (a service unreachable, a
    waited-for job failed).
    """
    configure_logging(verbose, log_format)
    # Only the flags given: the rest (and a lower-case variable) come from the environment.
    overrides: dict[str, Any] = {"database_url": database_url, "broker_url": broker_url}
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v})
    except SettingsError as exc:
        raise click.UsageError(f"invalid configuration: {exc}") from None
    app = App(settings=settings, verbose=verbose, as_json=as_json)
    ctx.obj = app
    ctx.call_on_close(app.close)


for command in (demo, worker, monitor, submit, retry, cancel, jobs, clusters, runners, db, doctor):
    cli.add_command(command)
cli.add_command(ui)


def main() -> None:
    cli(prog_name="conveyor")


if __name__ == "__main__":
    main()
