"""The monitoring web UI (``conveyor ui``): pages, the JSON API under ``/api`` and ``/metrics``.

``create_app(service, token=...)`` builds the FastAPI application for an
:class:`~conveyor.core.service.Orchestrator` (``Client(...).service``). The pages are static
HTML/JS/CSS served by the app itself (no CDN) and read everything from the JSON API.
"""

from conveyor.web.app import create_app

__all__ = ["create_app"]
