"""Task identifiers, versions and the compatibility rule runners use to pick tasks.

A submitted task at ``name@vX.Y`` may run on a runner that registered ``name@vA.B`` iff the names
are equal, ``A == X`` and ``B >= Y``: a minor bump adds behaviour without breaking inputs that were
already submitted, a major bump does not promise that.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Final, NewType

#: Tilebox's version syntax: ``v`` followed by major and minor, nothing else.
VERSION_PATTERN: Final = re.compile(r"^v(\d+)\.(\d+)$")
#: Longest task name accepted (Tilebox's limit).
MAX_NAME_LENGTH: Final = 256
#: Cluster slugs: lowercase letters, digits and dashes, not starting or ending with a dash.
SLUG_PATTERN: Final = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
#: The cluster that always exists and is used when none is named.
DEFAULT_CLUSTER: Final = "default"

JobId = NewType("JobId", uuid.UUID)
TaskId = NewType("TaskId", uuid.UUID)


def parse_version(version: str) -> tuple[int, int]:
    """Return ``(major, minor)`` of a ``vMAJOR.MINOR`` string.

    Raises:
        ValueError: the string does not match ``^v\\d+\\.\\d+$``.
    """
    if isinstance(version, str):
        return _parse_version(version)
    raise ValueError(f"Invalid version string: {version!r} (expected 'vMAJOR.MINOR', e.g. 'v1.0')")


@functools.lru_cache(maxsize=4096)
def _parse_version(version: str) -> tuple[int, int]:
    # Cached: every claimed task and delivery builds identifiers (~3 % of a runner's CPU).
    match = VERSION_PATTERN.match(version)
    if match is None:
        raise ValueError(
            f"Invalid version string: {version!r} (expected 'vMAJOR.MINOR', e.g. 'v1.0')"
        )
    return int(match.group(1)), int(match.group(2))


def validate_name(name: str) -> str:
    """Check a task name: a non-empty string of at most 256 characters.

    Raises:
        ValueError: empty, too long, not a string or not encodable as UTF-8.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("A task name is required (a non-empty string)")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"The task name is too long: {len(name)} characters (at most {MAX_NAME_LENGTH})"
        )
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"The task name {name!r} is not valid UTF-8: {exc.reason}") from None
    return name


@dataclass(frozen=True, slots=True, order=True)
class TaskIdentifier:
    """A task's name and ``vMAJOR.MINOR`` version, validated on construction."""

    name: str
    version: str

    def __post_init__(self) -> None:
        validate_name(self.name)
        parse_version(self.version)

    @property
    def major(self) -> int:
        return parse_version(self.version)[0]

    @property
    def minor(self) -> int:
        return parse_version(self.version)[1]

    def can_run(self, submitted: TaskIdentifier) -> bool:
        """Whether a runner registered at ``self`` may execute a task submitted as ``submitted``."""
        return (
            self.name == submitted.name
            and self.major == submitted.major
            and self.minor >= submitted.minor
        )

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def routing_key(name: str, major: int, minor: int) -> str:
    """A broker routing key for an exact (name, major, minor).

    User names may contain dots, ``*``, ``#`` or be 256 characters of unicode; none of that may
    reach a topic exchange. A fixed-length hash keeps every key short and literal; the full name
    travels in message headers and the runner checks it.
    """
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:32]
    return f"{digest}.v{major}.{minor}"


def slugify(name: str) -> str:
    """Turn a display name into a cluster slug (lowercase, digits, dashes; at most 63 chars)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63].strip("-")
    return slug or "cluster"


def validate_slug(slug: str) -> str:
    """Check a cluster slug.

    Raises:
        ValueError: the slug is not 1-63 lowercase letters, digits or dashes.
    """
    if not isinstance(slug, str) or SLUG_PATTERN.match(slug) is None:
        raise ValueError(
            f"Invalid cluster slug {slug!r}: use 1-63 lowercase letters, digits and dashes, "
            "starting and ending with a letter or digit"
        )
    return slug
