"""`conveyor ui`: the monitoring web UI, its JSON API and Prometheus metrics."""

from __future__ import annotations

import ipaddress

import click

from conveyor.cli._app import App, pass_app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _allowed_hosts(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...]:
    """Every name given, split on commas too (CONVEYOR_UI_ALLOWED_HOSTS=a.example,b.example),
    each checked now so a typo is a usage error instead of a UI that refuses every request."""
    from conveyor.web.hosts import allowed_host_pattern

    found = []
    for value in values:
        for name in filter(None, (part.strip() for part in value.split(","))):
            try:
                found.append(allowed_host_pattern(name))
            except ValueError as exc:
                raise click.BadParameter(str(exc), ctx, param) from None
    return tuple(found)


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (0.0.0.0 exposes the UI to the network: set a token).",
)
@click.option("--port", default=5555, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    envvar="CONVEYOR_UI_TOKEN",
    metavar="TOKEN",
    help="Require 'Authorization: Bearer TOKEN' for actions (retry, cancel); the UI asks for "
    "it once per browser tab [env CONVEYOR_UI_TOKEN].",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    envvar="CONVEYOR_UI_ALLOWED_HOSTS",
    metavar="NAME",
    callback=_allowed_hosts,
    help="Also answer requests whose Host header is NAME (repeatable; '*.example.com' for "
    "every subdomain, '*' for any). Needed for the name a reverse proxy or DNS gives the UI; "
    "loopback names, the --host address and IP addresses are always accepted "
    "[env CONVEYOR_UI_ALLOWED_HOSTS, comma- or space-separated].",
)
@pass_app
def ui(app: App, host: str, port: int, token: str | None, allowed_hosts: tuple[str, ...]) -> None:
    """Serve the web UI: dashboard, jobs with their task graphs, runners, clusters and
    queues; a JSON API under /api (OpenAPI at /api/docs) and Prometheus metrics at /metrics.

    Every request must name an allowed host in its Host header, or it is refused with 400:
    a web page that points its own DNS name at this machine (DNS rebinding) could otherwise
    read the API and retry or cancel jobs. Behind a reverse proxy, or under a DNS name, allow
    that name with --allowed-host.

    \b
    Examples:
      conveyor ui                                  http://127.0.0.1:5555
      CONVEYOR_UI_TOKEN=s3cret conveyor ui --host 0.0.0.0 --port 8080
      conveyor ui --allowed-host conveyor.example.com
      conveyor --database-url postgresql://user:pass@db/conveyor ui
    \b
    Scrape metrics (e.g. for a KEDA Prometheus scaler on conveyor_queue_depth):
      curl -s http://127.0.0.1:5555/metrics | grep conveyor_queue_depth
    """
    import uvicorn

    from conveyor.bootstrap import mask_url
    from conveyor.web import create_app
    from conveyor.web.hosts import default_allowed_hosts

    settings = app.settings
    hosts = default_allowed_hosts(host, allowed_hosts)
    web = create_app(
        app.client.service, reads=app.client.reads, token=token or None, allowed_hosts=hosts
    )
    where = f"[{host}]" if ":" in host and not host.startswith("[") else host
    app.err.print(
        f"[bold]conveyor ui[/] on http://{where}:{port}\n"
        f"  database: {mask_url(settings.resolved_database_url())}\n"
        f"  actions:  {'need the token' if token else 'open (no --token)'}\n"
        f"  hosts:    {', '.join(hosts)} and IP addresses (--allowed-host adds names)"
    )
    if not _is_loopback(host) and not token:
        app.err.print(
            "[yellow]Warning:[/] the UI is reachable from the network and anyone who can reach "
            "it can retry and cancel jobs: set --token or CONVEYOR_UI_TOKEN."
        )
    uvicorn.run(
        web,
        host=host,
        port=port,
        log_level="info" if app.verbose else "warning",
        access_log=app.verbose > 1,
        server_header=False,
    )
