"""Filling a cache: one builder per cache (a lock), the batches of the fixed plan appended with
durable checkpoints (a killed extraction resumes), and one shard of a sharded extraction."""

from __future__ import annotations

import contextlib
import fcntl
import logging
from pathlib import Path

from tqdm.auto import tqdm

from probing.attention import shards
from probing.attention.cache import AttentionCache, CacheError, CacheWriter
from probing.attention.encoders import EncoderSpec
from probing.attention.extract import ExtractionSettings, Plan, plan_extraction, word_maps
from probing.data.sentence import Sentence

log = logging.getLogger(__name__)


def write_batches(writer: CacheWriter, plan: Plan, settings: ExtractionSettings, batches: list[list[int]]) -> None:
    """Append the maps of ``batches``; batches already stored (a resumed cache) are passed over.

    The plan is fixed before anything runs, so a resumed run computes exactly the batches a clean
    run would, and writes the same bytes.
    """
    todo = [b for b in batches if not all(writer.done(i) for i in b)]
    stream = word_maps(plan, settings, todo)
    for step, (batch, maps) in enumerate(tqdm(stream, total=len(todo), desc="extract", unit="batch", mininterval=2)):
        for i, m in zip(batch, maps):
            if not writer.done(i):  # a batch half-stored under another batch plan
                writer.add(i, m)
        if (step + 1) % settings.flush_every == 0:
            writer.flush()


def build(directory: Path, key: dict, encoder: EncoderSpec, units: list[Sentence], settings: ExtractionSettings,
          source: str) -> AttentionCache:
    plan = plan_extraction(encoder, units, settings, source)
    writer = CacheWriter(directory, key, len(units), plan.num_layers, plan.num_heads, plan.layout)
    log.info("extracting %d sentences of %s with %s (%s) on %s into %s (%d stored already)",
             len(units) - len(plan.skipped), source, encoder.name, settings.quantity, plan.device, directory,
             writer.num_done)
    write_batches(writer, plan, settings, plan.batches)
    return writer.finish(plan.skipped)


def extract_shard(directory: Path, key: dict, encoder: EncoderSpec, units: list[Sentence],
                  settings: ExtractionSettings, source: str, shard: int, num_shards: int) -> AttentionCache:
    """Extract shard ``shard`` of ``num_shards`` (every n-th batch of the single-process plan); a
    finished shard is left alone and a partial one resumes."""
    shards.check_shard(shard, num_shards)
    target = shards.shard_dir(directory, shard, num_shards)
    try:
        done = AttentionCache(target, verify="auto")
        log.info("shard %d of %d is complete already: %s", shard, num_shards, target)
        return done
    except CacheError:
        pass
    plan = plan_extraction(encoder, units, settings, source)
    mine = list(range(shard, len(plan.batches), num_shards))
    batches = [plan.batches[b] for b in mine]
    writer = CacheWriter(target, {**key, "shard": shard, "num_shards": num_shards}, len(units),
                         plan.num_layers, plan.num_heads, plan.layout)
    log.info("shard %d of %d: %d of %d batches of %s into %s", shard, num_shards, len(mine), len(plan.batches),
             source, target)
    write_batches(writer, plan, settings, batches)
    return writer.finish(
        plan.skipped,
        owned=[i for b in batches for i in b],
        shard={"index": shard, "of": num_shards, "plan": shards.plan_hash(plan.batches),
               "plan_batches": len(plan.batches), "batches": {str(b): plan.batches[b] for b in mine}},
    )


@contextlib.contextmanager
def build_lock(directory: Path):
    """One builder per cache: parallel jobs (a joblib sweep, DDP ranks) that miss the same cache
    wait here and then find it complete."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f"{directory.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def derive(directory: Path, key: dict, source: AttentionCache, transform, num_maps_per_layer: int) -> AttentionCache:
    """A cache computed from another cache's maps, sentence by sentence, with no model: ``transform``
    takes a sentence's (K, T, T) maps to its (L * ``num_maps_per_layer``, T, T) ones (rollout)."""
    writer = CacheWriter(directory, key, len(source.index), source.num_layers, num_maps_per_layer, source.layout)
    todo = [i for i in source.kept if not writer.done(i)]
    log.info("deriving %s from %s (%d sentences)", directory, source.dir, len(todo))
    for step, i in enumerate(todo):
        writer.add(i, transform(source.maps(i)))
        if step % 2000 == 1999:
            writer.flush()
    return writer.finish(source.skipped, derived_from=str(source.dir))
