"""The HTTP status of each kind of error, and the handlers that answer with it.

The status follows the kind in :mod:`conveyor.core.errors`, never the message:

===================================  ======  ==================================================
error                                status  meaning for the caller
===================================  ======  ==================================================
``NotFoundError``                    404     no such job, task or cluster
``AlreadyExistsError``               409     the name is taken: pick another
``InvalidValueError`` and a request  422     a value was refused (a malformed id, a parameter
parameter that fails validation              out of range, an input that does not fit): the
                                             ``detail`` names it; pydantic's checks give 422 too
``InfrastructureError``              503     the database or broker is unreachable: try again
any other exception                  500     a bug: the traceback is logged, the body says so
===================================  ======  ==================================================

422 rather than 400 for refused values: the parameters FastAPI validates already answer 422,
and a client should not have to know which check refused a value. The routes' own 400s are
for requests that contradict themselves (``since`` after ``until``, ``roots`` with ``parent``)
and the Host allow-list (:mod:`conveyor.web.hosts`). Every error body is ``{"detail": …}``
(:class:`conveyor.web.models.Problem`).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.core.errors import (
    AlreadyExistsError,
    ConveyorError,
    InfrastructureError,
    InvalidValueError,
    NotFoundError,
)
from conveyor.web.models import Problem

log = logging.getLogger(__name__)

#: Status of each kind, most specific first (the first match wins).
STATUS_BY_KIND: tuple[tuple[type[ConveyorError], int], ...] = (
    (NotFoundError, 404),
    (AlreadyExistsError, 409),
    (InvalidValueError, 422),
    (InfrastructureError, 503),
)
#: Body of a 500: the exception's text may hold anything, so it stays in the log.
INTERNAL_ERROR = "Internal error (a bug in conveyor): the traceback is in the UI's log"
#: What any route of the API may answer besides its own statuses (for the OpenAPI document).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    500: {"model": Problem, "description": "A bug in conveyor (the traceback is logged)"},
    503: {"model": Problem, "description": "The database or broker is unavailable: try again"},
}


def status_for(exc: BaseException) -> int:
    """The HTTP status that answers ``exc``: 500 for what is not a known kind."""
    for kind, status in STATUS_BY_KIND:
        if isinstance(exc, kind):
            return status
    return 500


def _log_bug(request_line: str, exc: BaseException) -> None:
    log.error("%s failed: unexpected %s", request_line, type(exc).__name__, exc_info=exc)


async def conveyor_error(request: Request, exc: Exception) -> JSONResponse:
    """A :class:`ConveyorError` answered with the status of its kind."""
    status = status_for(exc)
    if status == 500:  # a ConveyorError of no HTTP kind (NoCacheError) reaching a route is a bug
        _log_bug(f"{request.method} {request.url.path}", exc)
        return JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)
    if status == 503:
        log.warning("%s %s failed: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": str(exc)}, status_code=status)


class UnexpectedErrors:
    """ASGI middleware: any exception no handler took becomes a JSON 500 whose traceback is
    logged once, here (the server then sees a normal response, not a second traceback)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            _log_bug(f"{scope.get('method', '')} {scope.get('path', '')}", exc)
            if started:  # half a response went out: nothing to do but drop the connection
                raise
            await JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Answer conveyor's errors by kind and every other exception with a logged 500."""
    app.add_exception_handler(ConveyorError, conveyor_error)
    app.add_middleware(UnexpectedErrors)
