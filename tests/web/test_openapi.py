"""Property-based tests of the JSON API against its own OpenAPI document (schemathesis):
generated requests, valid and invalid, never cause a server error, and every answer matches
the documented status codes, content types and schemas; invalid requests are refused with
a 4xx. Bounded to a few examples per
operation so the suite stays fast."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from conveyor.web import create_app
from conveyor.web.hosts import LOOPBACK_HOSTS
from tests.web.conftest import run_all, sqlite_client
from tests.web.flows import Report

# The schema is loaded when the module is collected (schemathesis' pytest integration needs
# it then), so the store is created here; the jobs are added by the fixture below.
_FOLDER = Path(tempfile.mkdtemp(prefix="conveyor-openapi-"))
_CLIENT = sqlite_client(_FOLDER)
atexit.register(shutil.rmtree, _FOLDER, True)
atexit.register(_CLIENT.close)
# schemathesis' ASGI client sends "Host: testserver": allow that name like a proxy's.
_APP = create_app(_CLIENT.service, allowed_hosts=(*LOOPBACK_HOSTS, "testserver"))
schema = schemathesis.openapi.from_asgi("/api/openapi.json", _APP)


@pytest.fixture(scope="module", autouse=True)
def jobs() -> None:
    """A failed job and a completed one, so ids found in responses lead somewhere."""
    done = _FOLDER / "done"
    done.touch()
    _CLIENT.jobs().submit("weekly report", Report(str(done), chunks=3))
    _CLIENT.jobs().submit("nightly report", Report(str(_FOLDER / "missing"), chunks=15))
    run_all(_CLIENT)


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_honours_its_openapi_document(case: Any) -> None:
    # A schema-valid request may still be refused on purpose: 'since' after 'until' (400), an
    # unknown id or cluster (404). Everything else is checked.
    case.call_and_validate(excluded_checks=[schemathesis.checks.positive_data_acceptance])
