"""Sharded extraction: shard ``i`` of ``n`` runs every n-th batch of the single-process plan.

Sharding the *batch plan* rather than the sentences keeps every batch exactly as a single
process would have formed it (same sentences, same padding), so each map is computed from the
same inputs. ``merge_shards`` then writes the shards' maps back in plan order, which makes the
merged cache's data file, index and checksum those of a single-process extraction.

    python -m probing.attention.extract -m split=train shard=0,1,2,3 num_shards=4 hydra/launcher=joblib
    python -m probing.attention.extract split=train num_shards=4        # merge (train/analyze also do it)
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from pathlib import Path

from probing.attention.cache import AttentionCache, CacheError, CacheWriter
from probing.attention.encoders import EncoderSpec
from probing.attention.extract import ExtractionSettings, extract_into, plan_extraction
from probing.data.sentence import Sentence

log = logging.getLogger(__name__)


def shard_root(directory: Path) -> Path:
    return directory.parent / f"{directory.name}.shards"


def shard_dir(directory: Path, shard: int, num_shards: int) -> Path:
    return shard_root(directory) / f"{shard:03d}-of-{num_shards:03d}"


def _plan_hash(batches: list[list[int]]) -> str:
    return hashlib.sha256(json.dumps(batches).encode()).hexdigest()[:16]


def check_shard(shard: int, num_shards: int) -> None:
    if not (isinstance(num_shards, int) and num_shards >= 1):
        raise ValueError(f"num_shards must be a positive integer, not {num_shards!r}")
    if not (isinstance(shard, int) and 0 <= shard < num_shards):
        raise ValueError(f"shard must be an integer in 0..{num_shards - 1}, not {shard!r}")


def extract_shard(directory: Path, key: dict, encoder: EncoderSpec, sentences: list[Sentence],
                  settings: ExtractionSettings, source: str, shard: int, num_shards: int) -> AttentionCache:
    """Extract shard ``shard`` of ``num_shards`` of the cache at ``directory``; a finished shard
    is left alone and a partial one resumes."""
    check_shard(shard, num_shards)
    target = shard_dir(directory, shard, num_shards)
    try:
        done = AttentionCache(target, verify="auto")
        log.info("shard %d of %d is complete already: %s", shard, num_shards, target)
        return done
    except CacheError:
        pass
    plan = plan_extraction(encoder, sentences, settings, source)
    mine = list(range(shard, len(plan.batches), num_shards))
    batches = [plan.batches[b] for b in mine]
    writer = CacheWriter(target, {**key, "shard": shard, "num_shards": num_shards}, len(sentences),
                         plan.num_layers, plan.num_heads)
    log.info("shard %d of %d: %d of %d batches of %s into %s", shard, num_shards, len(mine), len(plan.batches),
             source, target)
    extract_into(writer, plan.tokenizer, plan.model, plan.tok, batches, settings, plan.device)
    return writer.finish(
        plan.skipped,
        owned=[i for b in batches for i in b],
        shard={"index": shard, "of": num_shards, "plan": _plan_hash(plan.batches),
               "plan_batches": len(plan.batches), "batches": {str(b): plan.batches[b] for b in mine}},
    )


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
    writer = CacheWriter(directory, key, len(first.index), first.num_layers, first.num_heads)
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
