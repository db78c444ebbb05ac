"""Content hashes: of files (weights, treebanks, cache data) and of JSON-able keys.

One place, so that a cache key, a weights check and a data fingerprint can never disagree on how
a hash is taken.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def file_digest(path: str | Path, algorithm: str = "sha256", **params) -> str:
    """Hex digest of a file, read in 16 MB chunks (weights files are hundreds of MB)."""
    h = hashlib.new(algorithm, **params)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    return file_digest(path, "sha256")


def key_digest(obj, length: int = 16) -> str:
    """Short sha256 of a JSON-able object with sorted keys (cache keys, batch plans)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]
