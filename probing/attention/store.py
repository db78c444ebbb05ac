"""The attention store: word-level maps of a corpus split, extracted once and read by every job.

Everything about *where* maps live sits here: the cache key (model identity, data file, settings),
the directory, the build lock for parallel jobs, sharded extraction and its merge, and splits
joined with ``+``. Readers see the small :class:`AttentionStore` interface and nothing else.

    python extract.py model=mpnet_base data=ud_ewt split=dev
    python extract.py -m split=train shard=0,1,2,3 num_shards=4 hydra/launcher=local
    python extract.py split=train num_shards=4      # merge the shards
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from probing.attention import shards
from probing.attention.cache import AttentionCache, CacheError, CacheWriter, CombinedCache, cache_key_hash
from probing.attention.encoders import EncoderSpec
from probing.attention.extract import ExtractionSettings, Plan, plan_extraction, word_maps
from probing.attention.layout import Layout
from probing.data.corpus import Corpus
from probing.data.sentence import Sentence

log = logging.getLogger(__name__)


@runtime_checkable
class AttentionStore(Protocol):
    """What every reader of attention maps may rely on (a single cache or joined splits).

    ``maps(i)``: sentence ``i``'s (K, T, T) float16 maps, K = num_layers * num_heads (layer-major),
    words at tokens ``layout.words(n)``. ``kept``: indices with maps; ``skipped``: {index: reason}.
    """

    num_layers: int
    num_heads: int
    num_maps: int
    layout: Layout
    kept: np.ndarray
    skipped: dict[int, str]

    @property
    def key(self): ...

    def maps(self, i: int) -> np.ndarray: ...

    def pairs(self, sentences: list[Sentence]) -> Iterator[tuple[np.ndarray, Sentence]]: ...

    def __len__(self) -> int: ...


def data_key(corpus: Corpus, split: str) -> dict:
    return {"name": corpus.name, "split": split, "file": corpus.file(split).name, "sha256": corpus.fingerprint(split)}


def cache_key(encoder: EncoderSpec, data: dict, settings: ExtractionSettings) -> dict:
    return {"model": encoder.identity(), "data": data, **settings.key()}


def cache_dir_for(cache_root: str | Path, encoder: EncoderSpec, label: str, key: dict) -> Path:
    tag = "-random" if encoder.random_init else ""
    quantity = f"-{key['quantity']}" if "quantity" in key else ""
    name = f"{label}{quantity}-{key['mode']}-{key['max_length']}-{cache_key_hash(key)}"
    return Path(cache_root).expanduser() / f"{encoder.name}{tag}" / name


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


def open_units(encoder: EncoderSpec, units: list[Sentence], data: dict, settings: ExtractionSettings,
               cache_root: str | Path, label: str, source: str, shard: int | None = None,
               num_shards: int = 1) -> AttentionCache:
    """Cached maps of ``units`` (sentences, or document chunks joined into one word list),
    extracting first on a miss. ``data`` identifies the units in the cache key.

    With ``shard``, extract only that shard; with ``num_shards`` > 1 and no shard, merge the
    finished shards. A complete set of shards left by an earlier sharded run is merged rather
    than extracted again.
    """
    key = cache_key(encoder, data, settings)
    directory = cache_dir_for(cache_root, encoder, label, key)
    if shard is not None:
        try:  # merged already: the shard has nothing left to do
            return AttentionCache(directory)
        except CacheError:
            return extract_shard(directory, key, encoder, units, settings, source, shard, num_shards)
    try:
        # the checksum is checked on the first open after a write, and again if the file changes
        cache = AttentionCache(directory, verify="auto")
        log.info("attention cache hit: %s", directory)
        return cache
    except CacheError:
        pass
    with build_lock(directory):
        try:
            return AttentionCache(directory, verify="auto")
        except CacheError as e:
            if (directory / "meta.json").is_file():
                log.warning("%s; (re)building it", e)
        found = num_shards if num_shards > 1 else shards.complete_shard_count(directory)
        if found:
            return shards.merge_shards(directory, key, found)
        return build(directory, key, encoder, units, settings, source)


def open_split(encoder: EncoderSpec, corpus: Corpus, split: str, settings: ExtractionSettings,
               cache_root: str | Path, shard: int | None = None,
               num_shards: int = 1) -> tuple[AttentionStore, list[Sentence]]:
    """The split's sentences and their cached maps, extracting first if the cache lacks them.

    ``split`` may join splits with ``+`` (``train+dev+test``): each keeps its own cache, and they
    are read as one store (sentence indices run on across the parts).
    """
    if "+" in split:
        if shard is not None:
            raise ValueError("shard= extracts one split at a time; run it for each part of the split")
        parts = [open_split(encoder, corpus, s, settings, cache_root, shard, num_shards) for s in split.split("+")]
        return CombinedCache([c for c, _ in parts]), [s for _, sents in parts for s in sents]
    sentences, _ = corpus.read(split)
    cache = open_units(encoder, sentences, data_key(corpus, split), settings, cache_root,
                       f"{corpus.name}-{split}", str(corpus.file(split)), shard, num_shards)
    return cache, sentences


def describe(store: AttentionStore, sentences: list[Sentence]) -> dict:
    """What an extraction left: sentences stored and skipped (with reasons), shape, layout, size."""
    return {
        "cache_dir": str(getattr(store, "dir", "")),
        "sentences": len(sentences),
        "stored": len(store),
        "skipped": len(store.skipped),
        "skip_reasons": sorted(set(store.skipped.values()))[:10],
        "num_layers": store.num_layers,
        "num_heads": store.num_heads,
        "layout": store.layout.describe(),
        "bytes": store.meta["data_bytes"],
        "weights": int(store.meta["data_bytes"] // 2),
    }
