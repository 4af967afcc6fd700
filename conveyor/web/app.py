"""The FastAPI application: JSON API, Prometheus metrics and the static pages that use them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

from conveyor import __version__
from conveyor.core.errors import ConveyorError
from conveyor.core.reads import ReadService
from conveyor.core.service import Orchestrator
from conveyor.web.api import router
from conveyor.web.errors import ERROR_RESPONSES, install_error_handlers
from conveyor.web.hosts import LOOPBACK_HOSTS, HostGuard, allowed_host_pattern
from conveyor.web.metrics import MetricsCollector, ThroughputTracker

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
#: Paths of the single-page UI (all served by index.html; the script routes on the path).
PAGES = ("/", "/jobs", "/jobs/{job_id}", "/tasks/{task_id}", "/runners", "/clusters")
PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


def create_app(
    service: Orchestrator,
    *,
    reads: ReadService | None = None,
    token: str | None = None,
    allowed_hosts: Iterable[str] = LOOPBACK_HOSTS,
) -> FastAPI:
    """The UI for ``service``; with ``token``, retry/cancel need ``Authorization: Bearer``.

    Pages, the JSON API's reads and /metrics go through ``reads`` (default: a read service
    over ``service``'s store); only the actions use ``service``.

    Every request must name one of ``allowed_hosts`` (or an IP address) in its ``Host``
    header, so a DNS-rebinding page cannot read the API or drive the actions; the default
    is the loopback names, and ``conveyor ui`` adds the address it binds and
    ``--allowed-host``.
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            app.state.metrics.start()
        except ConveyorError as exc:  # the store is down: metrics start at the first scrape
            log.warning("metrics start deferred: %s", exc)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="conveyor",
        version=__version__,
        summary="Jobs, task trees, runners and queues of a conveyor installation.",
        description=(
            "The JSON API behind conveyor's web UI. Reads are open; the actions (retry, "
            "cancel) are POSTs that need `Authorization: Bearer <token>` when the UI was "
            "started with `--token`. Every request must name an allowed host in `Host` "
            "(loopback names, IP addresses and `--allowed-host`; else 400). Ids are UUIDs; "
            "lists are keyset-paginated."
        ),
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.service = service
    app.state.reads = reads if reads is not None else ReadService(service.store)
    app.state.token = token or None
    app.state.allowed_hosts = tuple(allowed_host_pattern(host) for host in allowed_hosts)
    app.state.throughput = ThroughputTracker()
    app.state.metrics = MetricsCollector(app.state.reads)
    app.include_router(router, responses=ERROR_RESPONSES)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    # Around every route and static file: a foreign Host gets nothing but the refusal.
    app.add_middleware(HostGuard, allowed_hosts=app.state.allowed_hosts)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": _location(tuple(e.get("loc", ()))), "message": str(e.get("msg", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['location']}: {e['message']}" for e in errors) or "Invalid request"
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    # By kind: 404, 409, 422, 503; anything else a logged 500 (the table in web/errors.py).
    install_error_handlers(app)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["metrics"])
    def metrics(request: Request) -> Response:
        """Prometheus metrics (text exposition format 0.0.4)."""
        collector: MetricsCollector = request.app.state.metrics
        return Response(collector.render(), media_type=PROMETHEUS_TYPE)

    @app.get("/healthz", response_class=PlainTextResponse, include_in_schema=False)
    def healthz() -> str:
        return "ok"

    index = STATIC / "index.html"

    def page() -> FileResponse:
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})

    for path in PAGES:
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)

    return app
