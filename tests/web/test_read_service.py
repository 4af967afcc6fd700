"""The UI reads through the read service it is given (pages, the JSON API and /metrics) and
changes state only through the orchestrator (the actions)."""

from __future__ import annotations

import warnings

from conveyor import Client
from conveyor.core.reads import ReadService
from conveyor.core.views import QueueStats
from conveyor.web import create_app
from tests.web.conftest import BASE_URL

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


class RecordingReads(ReadService):
    """A read service that notes the monitoring reads it served."""

    def __init__(self, client: Client) -> None:
        super().__init__(client.service.store)
        self.calls: list[str] = []

    def queue_stats(self) -> list[QueueStats]:
        self.calls.append("queue_stats")
        return super().queue_stats()


def test_the_api_and_metrics_read_through_the_given_read_service() -> None:
    client = Client("memory://")
    reads = RecordingReads(client)
    with TestClient(create_app(client.service, reads=reads), base_url=BASE_URL) as http:
        assert http.get("/api/queues").status_code == 200
        assert reads.calls == ["queue_stats"]
        assert http.get("/metrics").status_code == 200
        assert reads.calls == ["queue_stats", "queue_stats"]
    client.close()


def test_without_one_the_app_reads_the_orchestrators_store() -> None:
    client = Client("memory://")
    app = create_app(client.service)
    assert isinstance(app.state.reads, ReadService)
    assert app.state.reads.store is client.service.store
    client.close()
