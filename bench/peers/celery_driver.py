"""Producer side for Celery (run with bench/.venv-celery/bin/python); prints one JSON line.

celery_driver.py enqueue N        publish N no-op tasks, one apply_async each
celery_driver.py latency N        N probes one at a time, each after the previous started
celery_driver.py fanout N         one task that enqueues N no-op tasks
celery_driver.py sleep SEQ SECS   one sleeping task (recovery)
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from celery_app import app, fanout, noop, probe, sleep
from marks import Watcher


def main() -> None:
    command, *args = sys.argv[1:]
    out: dict[str, object] = {}
    with app.producer_or_acquire() as producer:
        if command == "enqueue":
            n, start = int(args[0]), int(args[1]) if len(args) > 1 else 0
            noop.apply_async((start,), producer=producer)  # connection warm
            t0 = time.time()
            for i in range(start + 1, start + n):
                noop.apply_async((i,), producer=producer)
            out = {"first_publish": t0, "elapsed": time.time() - t0}
        elif command == "latency":
            n = int(args[0])
            watcher = Watcher(os.environ["BENCH_MARK_DIR"])
            seen = watcher.poll()
            for i in range(n):
                probe.apply_async((i, time.time()), producer=producer)
                if not watcher.wait_for(seen + 1, 30.0):
                    out = {"error": f"probe {i} did not start within 30 s"}
                    break
                seen += 1
                time.sleep(0.005)
        elif command == "fanout":
            fanout.apply_async((int(args[0]),), producer=producer)
        elif command == "sleep":
            sleep.apply_async((int(args[0]), float(args[1])), producer=producer)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
