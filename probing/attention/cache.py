"""On-disk attention cache: one flat float16 file plus an offsets index per key.

Why this format: word-level maps differ in size per sentence, so a flat array with an
``(offset, T)`` index stores exactly 2 bytes per weight with no padding, and needs no library
beyond numpy (HDF5 would add a dependency and its own locking; safetensors wants every tensor
named and written in one go, which rules out resuming). A sentence's maps are read with one
``pread`` (:meth:`AttentionCache.maps`), so memory stays flat however much of the corpus a pass
reads; :meth:`AttentionCache.memmap` gives the whole file as a memmap for access of your own.
Rows are appended sentence by sentence, so a killed extraction resumes from the last flushed
batch. A cache is readable only once ``meta.json`` says ``complete``, and the data file's size
and checksum are recorded then.

Layout of ``<dir>/``::

    meta.json       key, num_layers, num_heads, layout, status, skipped, checksum
    attention.f16   all maps, (K, T, T) per sentence, back to back
    index.npy       (N, 2) int64: element offset and T per source sentence; -1 if not stored
    progress.json   while incomplete: how many bytes of attention.f16 are valid
    verified.json   size and mtime of attention.f16 when its checksum last matched
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from probing.attention.layout import Layout
from probing.errors import ProbingError
from probing.files import file_digest, key_digest

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
DATA, INDEX, META, PROGRESS, VERIFIED = "attention.f16", "index.npy", "meta.json", "progress.json", "verified.json"


class CacheError(ProbingError, RuntimeError):
    """A cache that is incomplete, truncated or altered; it is never read as data."""


def cache_key_hash(key: dict) -> str:
    return key_digest(key)


def _write_json(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True, default=str))
    os.replace(tmp, path)


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _file_digest(path: Path) -> str:
    # blake2b: the whole cache is hashed on its first open, and it is twice as fast as sha256
    return file_digest(path, "blake2b", digest_size=16)


class CacheWriter:
    """Appends sentences' maps; resumes a partial cache written under the same key."""

    def __init__(self, directory: str | Path, key: dict, num_sentences: int, num_layers: int, num_heads: int,
                 layout: Layout | None = None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key, self.num_layers, self.num_heads = key, num_layers, num_heads
        self.layout = layout or Layout()
        self.num_maps = num_layers * num_heads
        meta_path, progress_path = self.dir / META, self.dir / PROGRESS
        resumable = False
        if meta_path.is_file() and progress_path.is_file():
            meta = json.loads(meta_path.read_text())
            resumable = meta.get("key") == key and meta.get("num_sentences") == num_sentences
        if resumable:
            progress = json.loads(progress_path.read_text())
            self.index = np.load(self.dir / INDEX)
            self.bytes = progress["bytes"]
            # anything after the last recorded flush is a torn write: cut it off
            with open(self.dir / DATA, "r+b") as f:
                f.truncate(self.bytes)
            log.info("resuming cache %s: %d sentences already stored", self.dir, self.num_done)
        else:
            self.index = np.full((num_sentences, 2), -1, dtype=np.int64)
            self.bytes = 0
            open(self.dir / DATA, "wb").close()
            self._meta("partial", skipped={})
            self.flush()
        self._data = open(self.dir / DATA, "ab")

    @property
    def num_done(self) -> int:
        return int((self.index[:, 1] >= 0).sum())

    def done(self, i: int) -> bool:
        return bool(self.index[i, 1] >= 0)

    def _meta(self, status: str, **extra) -> None:
        _write_json(
            self.dir / META,
            {
                "format_version": FORMAT_VERSION,
                "key": self.key,
                "status": status,
                "num_sentences": len(self.index),
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "layout": self.layout.to_dict(),
                **extra,
            },
        )

    def add(self, i: int, maps: np.ndarray) -> None:
        """Store sentence ``i``'s (K, T, T) maps as float16."""
        K, T, T2 = maps.shape
        if K != self.num_maps or T != T2:
            raise ValueError(f"sentence {i}: maps of shape {maps.shape}, expected ({self.num_maps}, T, T)")
        self._data.write(np.ascontiguousarray(maps, dtype=np.float16).tobytes())
        self.index[i] = (self.bytes // 2, T)
        self.bytes += maps.size * 2

    def flush(self) -> None:
        """Make everything added so far durable, index before progress, so resume never overruns."""
        if hasattr(self, "_data"):
            self._data.flush()
            os.fsync(self._data.fileno())
        np.save(self.dir / INDEX, self.index)
        _write_json(self.dir / PROGRESS, {"bytes": self.bytes})

    def finish(self, skipped: dict[int, str], owned=None, **extra) -> AttentionCache:
        """Mark complete; ``skipped`` maps source sentence index to the reason it has no maps.

        ``owned``: the sentences this writer is responsible for (a shard's), default all.
        """
        self.flush()
        self._data.close()
        owned = range(len(self.index)) if owned is None else owned
        missing = [i for i in owned if self.index[i, 1] < 0 and i not in skipped]
        if missing:
            raise CacheError(f"{self.dir}: sentences {missing[:5]} were neither stored nor skipped")
        self._meta(
            "complete",
            skipped={str(k): v for k, v in skipped.items()},
            data_bytes=self.bytes,
            checksum=_file_digest(self.dir / DATA),
            **extra,
        )
        _write_json(self.dir / VERIFIED, _stamp(self.dir / DATA))
        (self.dir / PROGRESS).unlink()
        return AttentionCache(self.dir)


class AttentionCache:
    """Read-only view of a complete cache. ``maps(i)`` is sentence ``i``'s (K, T, T) float16 maps,
    T = n + ``layout.num_specials``.

    ``verify``: False checks the data file's size only; True also its checksum; "auto" checks
    the checksum unless the file's size and mtime are those it had when the checksum last
    matched, so a cache is hashed once after writing, not on every open, yet a file touched
    since is hashed again before it is read.
    """

    def __init__(self, directory: str | Path, verify: bool | str = False):
        self.dir = Path(directory)
        meta_path = self.dir / META
        if not meta_path.is_file():
            raise CacheError(f"{self.dir}: no {META}; not an attention cache")
        self.meta = json.loads(meta_path.read_text())
        if self.meta.get("status") != "complete":
            raise CacheError(f"{self.dir}: cache is incomplete (an extraction was interrupted)")
        size = (self.dir / DATA).stat().st_size if (self.dir / DATA).is_file() else -1
        if size != self.meta["data_bytes"]:
            raise CacheError(
                f"{self.dir / DATA}: {size} bytes on disk, {self.meta['data_bytes']} recorded; truncated or altered"
            )
        if verify == "auto":
            stamp = self.dir / VERIFIED
            verify = not (stamp.is_file() and json.loads(stamp.read_text()) == _stamp(self.dir / DATA))
        if verify:
            if _file_digest(self.dir / DATA) != self.meta["checksum"]:
                raise CacheError(f"{self.dir / DATA}: checksum mismatch; the file was altered")
            try:
                _write_json(self.dir / VERIFIED, _stamp(self.dir / DATA))
            except OSError:  # a read-only cache is still readable
                pass
        self.index = np.load(self.dir / INDEX)
        self.num_layers, self.num_heads = self.meta["num_layers"], self.meta["num_heads"]
        self.num_maps = self.num_layers * self.num_heads
        self.layout = Layout.from_dict(self.meta.get("layout"))
        self.skipped = {int(k): v for k, v in self.meta["skipped"].items()}
        self.kept = np.flatnonzero(self.index[:, 1] >= 0)
        self._size = size
        self._fd = None

    @property
    def key(self) -> dict:
        return self.meta["key"]

    def __len__(self) -> int:
        return len(self.kept)

    def maps(self, i: int) -> np.ndarray:
        """(K, T, T) float16; the words are tokens ``layout.words(n)`` (see :mod:`..layout`).

        Read with ``pread`` rather than through a memmap: pages of a mapped file that a pass
        has touched count towards the process's RSS, which would then grow with the corpus.
        """
        offset, T = self.index[i]
        if T < 0:
            raise KeyError(f"sentence {i} is not in the cache ({self.skipped.get(i, 'not stored')})")
        if self._fd is None or self._pid != os.getpid():  # DataLoader workers each open their own
            self._fd, self._pid = os.open(self.dir / DATA, os.O_RDONLY), os.getpid()
        count = self.num_maps * T * T
        raw = os.pread(self._fd, 2 * count, 2 * int(offset))
        return np.frombuffer(raw, dtype=np.float16).reshape(self.num_maps, T, T)

    def memmap(self) -> np.memmap:
        """The whole store as one flat float16 memmap, for zero-copy access of your own."""
        return np.memmap(self.dir / DATA, dtype=np.float16, mode="r")

    def __getstate__(self):
        # a file descriptor does not survive pickling into DataLoader workers
        return {**self.__dict__, "_fd": None}

    def __del__(self):
        if getattr(self, "_fd", None) is not None and self._pid == os.getpid():
            os.close(self._fd)

    def pairs(self, sentences):
        """Yield ``(maps, sentence)`` for every stored sentence, in corpus order."""
        for i in self.kept:
            yield self.maps(i), sentences[i]


class CombinedCache:
    """Several complete caches (say the train, dev and test splits) read as one store.

    Sentence ``i`` of the whole is sentence ``i - offset`` of the part it falls in, so the
    concatenated sentence lists line up with it. Nothing is copied or loaded up front.
    """

    def __init__(self, caches: list[AttentionCache]):
        shapes = {(c.num_layers, c.num_heads, c.layout) for c in caches}
        if len(shapes) != 1:
            raise CacheError(f"cannot combine caches of different models: {[str(c.dir) for c in caches]}")
        self.caches = caches
        (self.num_layers, self.num_heads, self.layout), = shapes
        self.num_maps = self.num_layers * self.num_heads
        sizes = [len(c.index) for c in caches]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.kept = np.concatenate([c.kept + off for c, off in zip(caches, self.offsets)])
        self.skipped = {i + int(off): why for c, off in zip(caches, self.offsets) for i, why in c.skipped.items()}
        self.dir = caches[0].dir.parent
        self.meta = {"data_bytes": sum(c.meta["data_bytes"] for c in caches), "parts": [str(c.dir) for c in caches]}

    @property
    def key(self) -> list[dict]:
        return [c.key for c in self.caches]

    def __len__(self) -> int:
        return len(self.kept)

    def maps(self, i: int) -> np.ndarray:
        part = int(np.searchsorted(self.offsets, i, side="right")) - 1
        if not 0 <= part < len(self.caches):
            raise KeyError(f"sentence {i} is not in the cache (it holds {self.offsets[-1]})")
        return self.caches[part].maps(i - int(self.offsets[part]))

    pairs = AttentionCache.pairs
