"""The attention store: word-level maps of a corpus split, extracted once and read by every job.

Readers see the small :class:`AttentionStore` interface (one cache, or splits joined with ``+``)
and :func:`open_split` / :func:`open_units`, which find a complete cache under its key
(:mod:`.keys`) or build it (:mod:`.build`, :mod:`.shards`) first. ``extract.py`` fills a cache
ahead of time (the runner's ``extract`` task):

    python extract.py model=mpnet_base data=ud_ewt split=dev
    python extract.py -m split=train shard=0,1,2,3 num_shards=4 hydra/launcher=local
    python extract.py split=train num_shards=4      # merge the shards
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from probing.attention import build, shards
from probing.attention.cache import AttentionCache, CacheError, CombinedCache
from probing.attention.encoders import EncoderSpec
from probing.attention.extract import DERIVED, ExtractionSettings
from probing.attention.keys import cache_dir_for, cache_key, data_key
from probing.attention.layout import Layout
from probing.attention.rollout import rollout
from probing.data.corpus import Corpus
from probing.data.sentence import Sentence

log = logging.getLogger(__name__)


@runtime_checkable
class AttentionStore(Protocol):
    """What every reader of attention maps may rely on (a single cache or joined splits).

    ``maps(i)``: sentence ``i``'s (K, T, T) float16 maps, K = num_layers * num_heads (layer-major),
    words at tokens ``layout.words(n)``. ``kept``: indices with maps; ``skipped``: {index: reason}.
    ``dir``: where it lies; ``meta``: at least ``data_bytes``, the size of its maps.
    """

    num_layers: int
    num_heads: int
    num_maps: int
    layout: Layout
    kept: np.ndarray
    skipped: dict[int, str]
    dir: Path
    meta: dict

    @property
    def key(self): ...

    def maps(self, i: int) -> np.ndarray: ...

    def pairs(self, sentences: list[Sentence]) -> Iterator[tuple[np.ndarray, Sentence]]: ...

    def __len__(self) -> int: ...


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
    if settings.quantity in DERIVED:
        return _derived(encoder, units, data, settings, cache_root, label, source, key, directory)
    if shard is not None:
        try:  # merged already: the shard has nothing left to do
            return AttentionCache(directory)
        except CacheError:
            return build.extract_shard(directory, key, encoder, units, settings, source, shard, num_shards)
    try:
        # the checksum is checked on the first open after a write, and again if the file changes
        cache = AttentionCache(directory, verify="auto")
        log.info("attention cache hit: %s", directory)
        return cache
    except CacheError:
        pass
    with build.build_lock(directory):
        try:
            return AttentionCache(directory, verify="auto")
        except CacheError as e:
            if (directory / "meta.json").is_file():
                log.warning("%s; (re)building it", e)
        found = num_shards if num_shards > 1 else shards.complete_shard_count(directory)
        if found:
            return shards.merge_shards(directory, key, found)
        return build.build(directory, key, encoder, units, settings, source)


def _derived(encoder, units, data, settings, cache_root, label, source, key, directory) -> AttentionCache:
    """A quantity computed from another's cache (rollout from attention): that cache first, then
    one pass over its maps, under the same lock discipline as an extraction."""
    try:
        return AttentionCache(directory, verify="auto")
    except CacheError:
        pass
    base = open_units(encoder, units, data, dataclasses.replace(settings, quantity=DERIVED[settings.quantity]),
                      cache_root, label, source)
    with build.build_lock(directory):
        try:
            return AttentionCache(directory, verify="auto")
        except CacheError:
            return build.derive(directory, key, base,
                                lambda maps: rollout(maps, base.num_layers, base.num_heads), 1)


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
        "cache_dir": str(store.dir),
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
