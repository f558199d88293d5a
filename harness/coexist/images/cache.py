"""Where built images live, keyed by the recipe that built them."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from coexist.base import log
from coexist.base.retry import retry


def cache_root() -> Path:
    """The image cache: $COEXIST_CACHE, else /var/cache/coexist."""
    return Path(os.environ.get("COEXIST_CACHE", "/var/cache/coexist"))


def recipe_key(*parts: str | bytes) -> str:
    """A short stable digest of everything a build depends on."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@contextmanager
def build_lock(path: Path, *, timeout: float) -> Iterator[None]:
    """Hold an exclusive flock on `path`: one build per image across parallel workers.

    A second worker waits (through `retry`, up to `timeout` seconds) and then finds the image built.
    """
    with path.open("a") as handle:

        def take(last_try: bool) -> bool:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        if not take(False):
            with log.step(f"wait for another worker's build ({path.name})"):
                retry(take, timeout=timeout, what=f"lock {path}", interval=0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
