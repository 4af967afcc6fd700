"""Administration: clusters, runners, database migrations and the `doctor` self-check."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from rich.table import Table

from conveyor.cli._app import App, pass_app
from conveyor.cli._render import runners_table
from conveyor.config import Settings
from conveyor.core.errors import ClusterNotFoundError
from conveyor.core.identifiers import validate_slug
from conveyor.core.reads import ReadService


@click.group()
def clusters() -> None:
    """Create, list and delete clusters (groups of runners)."""


@clusters.command("create")
@click.argument("name")
@click.option(
    "--slug", help="Slug to use (default: the name when it is a valid slug, else a slugified name)."
)
@pass_app
def create_cluster(app: App, name: str, slug: str | None) -> None:
    """Create a cluster.

    \b
    Examples:
      conveyor clusters create gpu
      conveyor clusters create "GPU machines (EU)" --slug gpu-eu
    """
    if slug is not None:
        try:
            validate_slug(slug)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--slug") from None
    try:
        cluster = app.client.clusters().create(name, slug)
    except ValueError as exc:  # no name, or the slug is taken (AlreadyExistsError)
        raise click.BadParameter(str(exc), param_hint="--slug" if slug else "NAME") from None
    if app.as_json:
        app.print_json({"slug": cluster.slug, "name": cluster.display_name})
    else:
        app.console.print(f"Created cluster [bold]{cluster.slug}[/] ({cluster.display_name})")


@clusters.command("list")
@pass_app
def list_clusters(app: App) -> None:
    """Every cluster with its online runners.

    \b
    Example:
      conveyor --json clusters list
    """
    found = app.client.clusters().all()
    runners = app.client.reads.list_runners()
    if app.as_json:
        app.print_json(
            [
                {
                    "slug": c.slug,
                    "name": c.display_name,
                    "deletable": c.deletable,
                    "runners_online": sum(r.cluster == c.slug for r in runners),
                }
                for c in found
            ]
        )
        return
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    for column in ("SLUG", "NAME", "RUNNERS ONLINE"):
        table.add_column(column)
    for c in found:
        table.add_row(c.slug, c.display_name, str(sum(r.cluster == c.slug for r in runners)))
    app.console.print(table)


@clusters.command("delete")
@click.argument("slug")
@pass_app
def delete_cluster(app: App, slug: str) -> None:
    """Delete a cluster (`default` cannot be deleted).

    \b
    Example:
      conveyor clusters delete gpu-eu
    """
    try:
        app.client.clusters().delete(slug)
    except (ValueError, ClusterNotFoundError) as exc:  # unknown, or `default`
        raise click.BadParameter(str(exc), param_hint="SLUG") from None
    app.console.print(f"Deleted cluster [bold]{slug}[/]")


@click.group()
def runners() -> None:
    """Inspect task runners."""


@runners.command("list")
@click.option("--all", "include_gone", is_flag=True, help="Also stopped and gone runners.")
@pass_app
def list_runners(app: App, include_gone: bool) -> None:
    """Runners, most recently seen first, with what they run right now.

    \b
    Examples:
      conveyor runners list
      conveyor runners list --all --json
    """
    found = app.client.reads.list_runners(include_gone)
    if app.as_json:
        app.print_json(
            [
                {
                    "id": r.id,
                    "cluster": r.cluster,
                    "state": r.state,
                    "host": r.host,
                    "pid": r.pid,
                    "last_seen": r.last_seen,
                    "started_at": r.started_at,
                    "current_task": r.current_task,
                    "tasks_computed": r.tasks_computed,
                    "tasks_failed": r.tasks_failed,
                    "identifiers": [str(i) for i in r.identifiers],
                }
                for r in found
            ]
        )
        return
    if not found:
        app.console.print(
            "No runners online."
            + ("" if include_gone else " (--all shows stopped and gone runners)")
        )
        return
    app.console.print(runners_table(found))


@click.group()
def db() -> None:
    """Database schema migrations."""


@db.command("upgrade")
@pass_app
def upgrade(app: App) -> None:
    """Migrate the database to the schema this version of conveyor needs.

    An empty database is migrated automatically on first use; an existing one that is behind
    asks for this command (take a backup first in production).

    \b
    Example:
      CONVEYOR_DATABASE_URL=postgresql://conveyor@db/conveyor conveyor db upgrade
    """
    url = app.settings.resolved_database_url()
    if url.startswith("memory://"):
        app.console.print("memory:// has no schema: nothing to do")
        return
    from conveyor.store_sql import current_revision, head_revision
    from conveyor.store_sql import upgrade as run_upgrade
    from conveyor.urls import mask_url

    if app.settings.embedded:
        app.settings.embedded_database_path.parent.mkdir(parents=True, exist_ok=True)
    before = current_revision(url)
    run_upgrade(url)
    after = current_revision(url)
    if before == after:
        app.console.print(f"{mask_url(url)} is up to date (revision {after})")
    else:
        app.console.print(
            f"Upgraded {mask_url(url)}: {before or 'empty'} → {after} (head {head_revision()})"
        )


def _check(checks: list[dict[str, Any]], name: str, ok: bool, detail: str) -> bool:
    checks.append({"name": name, "ok": ok, "detail": detail})
    return ok


def _checks_table(checks: list[dict[str, Any]]) -> Table:
    table = Table(show_header=False, show_edge=False, pad_edge=False)
    table.add_column(width=1)
    table.add_column(style="bold")
    table.add_column()
    for check in checks:
        table.add_row("[green]✓[/]" if check["ok"] else "[red]✗[/]", check["name"], check["detail"])
    return table


@click.command()
@pass_app
def doctor(app: App) -> None:
    """Check that the database and the broker are reachable and ready.

    Reports versions, whether the schema is current, queues and consumers per cluster, and
    the runners online. Exits 1 when something needs fixing. With --json, stdout is one JSON
    document: {"ok": …, "checks": [{"name", "ok", "detail"}, …]} (same exit code).

    \b
    Examples:
      conveyor --broker-url amqp://guest:guest@localhost:5672// doctor
      conveyor --json doctor | jq -r '.checks[] | select(.ok | not) | .detail'
    """
    settings: Settings = app.settings
    checks: list[dict[str, Any]] = []  # shown as a table, or as JSON with --json
    ok = True
    db_url = settings.resolved_database_url()
    from conveyor.bootstrap import build_broker, build_store, check_broker
    from conveyor.urls import mask_url, redact

    started = time.monotonic()
    store = None
    try:
        store = build_store(db_url, settings.startup_timeout)
        version = _database_version(store)
        ok &= _check(
            checks,
            "database",
            True,
            f"{mask_url(db_url)} ({version}, {1000 * (time.monotonic() - started):.0f} ms)",
        )
    except Exception as exc:
        ok &= _check(checks, "database", False, f"{type(exc).__name__}: {redact(str(exc), db_url)}")
    if store is not None and not db_url.startswith("memory://"):
        from conveyor.store_sql import current_revision, head_revision

        current, head = current_revision(db_url), head_revision()
        ok &= _check(
            checks,
            "schema",
            current == head,
            f"revision {current} (head {head})"
            + ("" if current == head else ": run `conveyor db upgrade`"),
        )
    broker_url = settings.resolved_broker_url()
    try:
        detail = check_broker(broker_url, settings.startup_timeout)
        broker = build_broker(broker_url, settings)
        if store is not None and hasattr(broker, "queue_depths"):
            for runner in ReadService(store).list_runners():
                depths = broker.queue_depths(runner.cluster, runner.identifiers)
                waiting = sum(depths.values())
                detail += f"\n{runner.cluster}: {len(depths)} queues, {waiting} messages waiting"
        broker.close()
        ok &= _check(checks, "broker", True, detail)
    except Exception as exc:
        ok &= _check(
            checks, "broker", False, f"{type(exc).__name__}: {redact(str(exc), broker_url)}"
        )
    if store is not None:
        reads = ReadService(store)
        online = reads.list_runners()
        clusters = reads.all_clusters()
        by_cluster = ", ".join(
            f"{c.slug}: {sum(r.cluster == c.slug for r in online)}" for c in clusters
        )
        _check(checks, "runners", True, f"{len(online)} online ({by_cluster})")
        store.close()
    if app.as_json:
        app.print_json({"ok": ok, "checks": checks})
    else:
        app.console.print(_checks_table(checks))
    sys.exit(0 if ok else 1)


def _database_version(store: object) -> str:
    engine = getattr(store, "_engine", None)
    if engine is None:
        return "in memory"
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            row = connection.exec_driver_sql("SHOW server_version").scalar()
            return f"PostgreSQL {row}"
        row = connection.exec_driver_sql("select sqlite_version()").scalar()
        return f"SQLite {row}"
