"""Job caches (Tilebox's ``JobCache`` family): bytes by key, namespaced per job with ``group``.

Tasks share data through the job cache instead of reading each other's results. Runners hand
every task ``cache.group(str(job.id))``, so jobs never see each other's keys.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from conveyor.core.errors import NoCacheError


def _split(key: str) -> tuple[list[str], str]:
    if not isinstance(key, str) or not key or key.startswith("/") or key.endswith("/"):
        raise KeyError(f"Invalid cache key {key!r}: a non-empty string like 'a' or 'a/b'")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise KeyError(f"Invalid cache key {key!r}: empty, '.' or '..' segments")
    return parts[:-1], parts[-1]


class InMemoryCache:
    """A cache in process memory: fine for one runner process, lost on restart."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._values: dict[str, bytes] = {}
        self._groups: dict[str, InMemoryCache] = {}

    def _resolve(self, key: str) -> tuple[InMemoryCache, str]:
        groups, leaf = _split(key)
        cache = self
        for g in groups:
            cache = cache.group(g)
        return cache, leaf

    def group(self, key: str) -> InMemoryCache:
        cache = self
        for part in key.split("/"):
            with cache._lock:
                cache = cache._groups.setdefault(part, InMemoryCache())
        return cache

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        cache, leaf = self._resolve(key)
        with cache._lock:
            return leaf in cache._values

    def __setitem__(self, key: str, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"Cache values must be bytes, got {type(value).__name__}")
        cache, leaf = self._resolve(key)
        with cache._lock:
            cache._values[leaf] = bytes(value)

    def __getitem__(self, key: str) -> bytes:
        cache, leaf = self._resolve(key)
        with cache._lock:
            try:
                return cache._values[leaf]
            except KeyError:
                raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(sorted(self._values))

    def items(self) -> Iterator[tuple[str, bytes]]:
        for key in self:
            yield key, self[key]


class LocalFileSystemCache:
    """A cache in a directory (a shared filesystem or NAS lets several machines share it).

    Writes go to a temporary file renamed into place, so readers never see half a value.
    """

    def __init__(self, root: str | os.PathLike[str] = "cache") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        groups, leaf = _split(key)
        return self.root.joinpath(*groups, leaf)

    def group(self, key: str) -> LocalFileSystemCache:
        groups, leaf = _split(key)
        return LocalFileSystemCache(self.root.joinpath(*groups, leaf))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._path(key).is_file()

    def __setitem__(self, key: str, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"Cache values must be bytes, got {type(value).__name__}")
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(bytes(value))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __getitem__(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError):
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        if not self.root.is_dir():
            return iter(())
        return iter(
            sorted(
                p.name
                for p in self.root.iterdir()
                if p.is_file() and not p.name.startswith(".tmp-")
            )
        )

    def items(self) -> Iterator[tuple[str, bytes]]:
        for key in self:
            yield key, self[key]


class NoCache:
    """The cache of a runner started without one: any use raises a clear ``NoCacheError``."""

    def _fail(self) -> NoCacheError:
        return NoCacheError(
            "No cache is configured for this runner: pass cache=InMemoryCache() or "
            "cache=LocalFileSystemCache(path) to client.runner(...)"
        )

    def group(self, key: str) -> NoCache:
        return self

    def __contains__(self, key: object) -> bool:
        raise self._fail()

    def __setitem__(self, key: str, value: bytes) -> None:
        raise self._fail()

    def __getitem__(self, key: str) -> bytes:
        raise self._fail()

    def __iter__(self) -> Iterator[str]:
        raise self._fail()
