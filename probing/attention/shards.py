"""Shard files: where shards live, when a set is complete, and how they merge into one cache.

Shard ``i`` of ``n`` runs every n-th batch of the single-process plan (``store.extract_shard``).

Sharding the *batch plan* rather than the sentences keeps every batch exactly as a single
process would have formed it (same sentences, same padding), so each map is computed from the
same inputs. ``merge_shards`` then writes the shards' maps back in plan order, which makes the
merged cache's data file, index and checksum those of a single-process extraction.

    python extract.py -m split=train shard=0,1,2,3 num_shards=4 hydra/launcher=joblib
    python extract.py split=train num_shards=4        # merge (train/analyze also do it)
"""

from __future__ import annotations

import logging
import re
import shutil
from pathlib import Path

from probing.attention.cache import AttentionCache, CacheError, CacheWriter
from probing.files import key_digest

log = logging.getLogger(__name__)


def shard_root(directory: Path) -> Path:
    return directory.parent / f"{directory.name}.shards"


def shard_dir(directory: Path, shard: int, num_shards: int) -> Path:
    return shard_root(directory) / f"{shard:03d}-of-{num_shards:03d}"


def plan_hash(batches: list[list[int]]) -> str:
    return key_digest(batches)


def check_shard(shard: int, num_shards: int) -> None:
    if not (isinstance(num_shards, int) and num_shards >= 1):
        raise ValueError(f"num_shards must be a positive integer, not {num_shards!r}")
    if not (isinstance(shard, int) and 0 <= shard < num_shards):
        raise ValueError(f"shard must be an integer in 0..{num_shards - 1}, not {shard!r}")


def complete_shard_count(directory: Path) -> int | None:
    """``n`` if ``directory``'s shard folder holds all ``n`` shards, complete; else None."""
    root = shard_root(directory)
    if not root.is_dir():
        return None
    counts = {int(m.group(2)) for d in root.iterdir() if (m := re.fullmatch(r"(\d+)-of-(\d+)", d.name))}
    for n in sorted(counts):
        try:  # a missing, partial or damaged shard raises CacheError
            [AttentionCache(shard_dir(directory, s, n)) for s in range(n)]
            return n
        except CacheError:
            continue
    return None


def merge_shards(directory: Path, key: dict, num_shards: int, keep_shards: bool = False) -> AttentionCache:
    """Join ``num_shards`` complete shards into the cache a single process would have written."""
    check_shard(0, num_shards)
    shards, missing = [], []
    for s in range(num_shards):
        try:
            shards.append(AttentionCache(shard_dir(directory, s, num_shards), verify="auto"))
        except CacheError as e:
            missing.append(f"{s} ({e})")
    if missing:
        raise CacheError(
            f"cannot merge {directory.name}: shard(s) {', '.join(missing)} of {num_shards} are missing or "
            f"incomplete; run the extraction with shard=<i> num_shards={num_shards} for each"
        )
    owner, batches, plans = {}, {}, set()
    for cache in shards:
        meta = cache.meta
        if {k: v for k, v in meta["key"].items() if k not in ("shard", "num_shards")} != key:
            raise CacheError(f"{cache.dir}: written under another key than {directory.name}")
        plans.add((meta["shard"]["plan"], meta["shard"]["plan_batches"]))
        for b, members in meta["shard"]["batches"].items():
            owner[int(b)], batches[int(b)] = cache, members
    if len(plans) != 1:
        raise CacheError(f"{shard_root(directory)}: shards come from different batch plans (batch_size or "
                         f"max_tokens changed between them); re-extract them with the same settings")
    (_, plan_batches), = plans
    if sorted(batches) != list(range(plan_batches)):
        raise CacheError(f"{shard_root(directory)}: the shards do not cover the {plan_batches} batches exactly")
    first = shards[0]
    writer = CacheWriter(directory, key, len(first.index), first.num_layers, first.num_heads, first.layout)
    for b in range(plan_batches):
        for i in batches[b]:
            if not writer.done(i):
                writer.add(i, owner[b].maps(i))
        if b % 200 == 199:
            writer.flush()
    merged = writer.finish(first.skipped, merged_from_shards=num_shards)
    log.info("merged %d shards into %s (%d sentences)", num_shards, directory, len(merged))
    if not keep_shards:
        shutil.rmtree(shard_root(directory))
    return merged
