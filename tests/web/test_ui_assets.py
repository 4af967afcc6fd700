"""The UI's static modules and the enums they read from the API instead of copying them."""

from __future__ import annotations

import re

from conveyor.core.model import INACTIVE_JOB_STATES, JobState, TaskState
from conveyor.web.app import STATIC
from tests.web.conftest import World


def test_enums_are_served_from_the_python_definitions(world: World) -> None:
    body = world.http.get("/api/enums").json()
    assert body == {
        "job_states": [s.value for s in JobState],
        "task_states": [s.value for s in TaskState],
        "terminal_job_states": sorted(
            (s.value for s in INACTIVE_JOB_STATES), key=[s.value for s in JobState].index
        ),
    }


def test_every_module_is_served_as_javascript_and_loaded_as_a_module(world: World) -> None:
    html = world.http.get("/").text
    assert '<script src="/static/app.js" type="module"></script>' in html
    modules = sorted(p.name for p in STATIC.glob("*.js"))
    assert "app.js" in modules and "graph-layout.js" in modules
    imported: set[str] = set()
    for name in modules:
        response = world.http.get(f"/static/{name}")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/javascript"), name
        found = re.findall(r'from "\./([\w-]+\.js)"|import\("\./([\w-]+\.js)"\)', response.text)
        imported.update(a or b for a, b in found)
        # No CDN, no bare specifiers a browser could not resolve without a build step.
        assert not re.search(r'from "(?!\./)', response.text), name
    assert imported <= set(modules)
    assert set(modules) - imported == {"app.js"}  # every module is reachable from the entry
