"""The web API answers each kind of error with its own status (conveyor.web.errors): 404 not
found, 409 already exists, 422 a refused value, 503 the store or broker unavailable, and a 500
whose traceback is logged for anything else (a bug), every one with a JSON ``detail``.

Each kind is raised by a route added to the real application (its middleware, Host guard and
handlers), so the mapping is tested whatever the routes above it call; the kinds a real route
meets on its own (an unknown job, a malformed id) are asked of the real routes too.
"""

from __future__ import annotations

import logging

import pytest

from conveyor.core.errors import (
    AlreadyExistsError,
    BrokerUnavailableError,
    ClusterNotFoundError,
    ConfigurationError,
    InputDecodeError,
    InvalidValueError,
    NoCacheError,
    SchemaOutdatedError,
    StoreUnavailableError,
)
from conveyor.web.errors import INTERNAL_ERROR
from tests.web.conftest import World

UNKNOWN = "01a2241b-0000-7000-8000-000000000000"

RAISED: dict[str, BaseException] = {
    "not-found": ClusterNotFoundError("No cluster 'gpu'"),
    "exists": AlreadyExistsError("The cluster 'gpu' already exists"),
    "invalid": InvalidValueError("Invalid cluster slug 'Bad_Slug'"),
    "decode": InputDecodeError("Greet input has unknown fields ['nom']"),
    "config": ConfigurationError("Unsupported database URL scheme 'mysql'"),
    "store": StoreUnavailableError("The database at sqlite:///x is unreachable"),
    "schema": SchemaOutdatedError("The schema is behind: run `conveyor db upgrade`"),
    "broker": BrokerUnavailableError("RabbitMQ at amqp://x is unreachable"),
    "no-cache": NoCacheError("no job cache on this runner"),
    "value": ValueError("invalid literal for int() with base 10: 'x'"),
    "key": KeyError("state"),
}


@pytest.fixture(scope="module")
def raising(world: World) -> World:
    """The world's app with a route that raises ``RAISED[kind]``."""

    def raise_kind(kind: str) -> None:
        raise RAISED[kind]

    world.http.app.add_api_route("/api/test-raise/{kind}", raise_kind)  # type: ignore[attr-defined]
    return world


def answer(world: World, kind: str) -> tuple[int, str]:
    response = world.http.get(f"/api/test-raise/{kind}")
    assert response.headers["content-type"] == "application/json", response.text
    return response.status_code, str(response.json()["detail"])


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("not-found", 404),
        ("exists", 409),
        ("invalid", 422),
        ("decode", 422),
        ("config", 422),
        ("store", 503),
        ("schema", 503),
        ("broker", 503),
    ],
)
def test_each_kind_has_its_status_and_its_message(raising: World, kind: str, status: int) -> None:
    assert answer(raising, kind) == (status, str(RAISED[kind]))


def test_the_store_unavailable_is_logged_as_a_warning_without_traceback(
    raising: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="conveyor.web"):
        assert answer(raising, "store")[0] == 503
    [record] = [r for r in caplog.records if r.name.startswith("conveyor.web")]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "/api/test-raise/store" in record.getMessage()


@pytest.mark.parametrize("kind", ["value", "key", "no-cache"])
def test_anything_else_is_a_500_with_its_traceback_logged(
    raising: World, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="conveyor.web"):
        status, detail = answer(raising, kind)
    assert (status, detail) == (500, INTERNAL_ERROR)
    assert str(RAISED[kind]) not in detail  # the text of a bug stays in the log
    [record] = [r for r in caplog.records if r.name.startswith("conveyor.web")]
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert record.exc_info[1] is RAISED[kind]
    assert f"GET /api/test-raise/{kind}" in record.getMessage()


def test_a_plain_value_error_is_no_longer_a_400(raising: World) -> None:
    """It used to be, so a bug's ValueError looked like the client's mistake."""
    assert answer(raising, "value")[0] == 500


def test_the_real_routes_answer_404_and_422(world: World) -> None:
    for path in (f"/api/jobs/{UNKNOWN}", f"/api/tasks/{UNKNOWN}", f"/api/jobs/{UNKNOWN}/graph"):
        response = world.http.get(path)
        assert response.status_code == 404, (path, response.text)
        assert UNKNOWN in response.json()["detail"]
    malformed = world.http.get("/api/jobs/not-a-uuid")
    assert malformed.status_code == 422
    assert malformed.json()["errors"][0]["location"] == "path.job_id"
    refused = world.http.post(f"/api/jobs/{UNKNOWN}/retry")
    assert refused.status_code == 404 and UNKNOWN in refused.json()["detail"]


def test_the_openapi_document_names_the_statuses_every_route_may_answer(world: World) -> None:
    paths = world.http.get("/api/openapi.json").json()["paths"]
    for path in ("/api/jobs", "/api/jobs/{job_id}", "/api/jobs/{job_id}/retry"):
        for operation in paths[path].values():
            assert {"500", "503"} <= set(operation["responses"]), path
