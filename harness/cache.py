"""Where built images live, keyed by the recipe that built them."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


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
