from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor import Client


@pytest.fixture(params=["memory://", "none://"], ids=["memory-broker", "polling"])
def client(request: pytest.FixtureRequest) -> Iterator[Client]:
    """An in-process client, with a broker and with serverless (polling) dispatch."""
    with Client("memory://", request.param) as c:
        yield c
