"""Heartbeats are served while user code blocks the runner's thread for much longer."""

from __future__ import annotations

from collections.abc import Callable

from conveyor.broker_amqp import AmqpBroker
from conveyor.core.model import JobState
from integration.broker_amqp._runners import Harness, Spin, fast_settings, journal, wait_until
from integration.broker_amqp.conftest import RabbitCtl


def conveyor_connections(rabbitmqctl: RabbitCtl) -> set[tuple[str, str, str]]:
    """(connection name, client port, negotiated heartbeat) of this vhost's conveyor connections."""
    found = set()
    for row in rabbitmqctl.rows(
        "list_connections", "vhost", "peer_port", "timeout", "client_properties"
    ):
        vhost, port, heartbeat, properties = row[0], row[1], row[2], row[3]
        if vhost == rabbitmqctl.vhost and '"connection_name","conveyor ' in properties:
            name = properties.split('"connection_name","', 1)[1].split('"', 1)[0]
            found.add((name, port, heartbeat))
    return found


def test_a_task_blocking_for_20s_keeps_its_connections_with_a_2s_heartbeat(
    make_broker: Callable[..., AmqpBroker], rabbitmqctl: RabbitCtl
) -> None:
    # Given: a 2 s heartbeat (RabbitMQ drops a connection silent for ~2 heartbeats)
    log = journal()
    broker = make_broker(heartbeat=2)
    harness = Harness(broker)
    try:
        harness.start_runner([Spin], fast_settings(sweep_interval=120.0))
        # When: a task spins the CPU in pure Python for 20 s on the runner
        job_id, _ = harness.submit(Spin("spin", 20.0))
        assert wait_until(lambda: log.started("spin") is not None, 10)
        before = conveyor_connections(rabbitmqctl)
        assert {name.split("#")[0].split(" pid=")[0] for name, _, _ in before} == {
            "conveyor consumer default",
            "conveyor publisher",
        }
        assert {heartbeat for _, _, heartbeat in before} == {"2"}
        assert harness.wait_job(job_id, 60) is JobState.COMPLETED
        after = conveyor_connections(rabbitmqctl)
    finally:
        harness.stop()

    # Then: the very same connections (same client ports) survived, nothing reconnected, and
    # the task ran once
    assert after == before
    assert broker.stats.connections == 1
    assert broker.stats.connection_losses == 0
    assert log.count("spin") == 1
