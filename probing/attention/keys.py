"""Where a cache lives: its key (everything that changes the maps) and its directory.

The key covers the model's identity (weights hash or hub name, random init and seed, BOS), the
data file's sha256, the split and the extraction settings that change the maps; the directory
name carries a short hash of it, so two runs that would compute different maps never share one.
"""

from __future__ import annotations

from pathlib import Path

from probing.attention.cache import cache_key_hash
from probing.attention.encoders import EncoderSpec
from probing.attention.extract import ExtractionSettings
from probing.data.corpus import Corpus


def data_key(corpus: Corpus, split: str) -> dict:
    return {"name": corpus.name, "split": split, "file": corpus.file(split).name, "sha256": corpus.fingerprint(split)}


def cache_key(encoder: EncoderSpec, data: dict, settings: ExtractionSettings) -> dict:
    return {"model": encoder.identity(), "data": data, **settings.key()}


def cache_dir_for(cache_root: str | Path, encoder: EncoderSpec, label: str, key: dict) -> Path:
    tag = "-random" if encoder.random_init else ""
    quantity = f"-{key['quantity']}" if "quantity" in key else ""
    name = f"{label}{quantity}-{key['mode']}-{key['max_length']}-{cache_key_hash(key)}"
    return Path(cache_root).expanduser() / f"{encoder.name}{tag}" / name
