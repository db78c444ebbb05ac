"""Probe inputs: cached word-level maps, gold trees and frozen GloVe vectors, per split."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from probing.attention.cache import AttentionCache
from probing.attention.encoders import EncoderSpec
from probing.attention.extract import ExtractionSettings, get_attention
from probing.data.corpus import Corpus
from probing.data.glove import Glove
from probing.data.sentence import Sentence
from probing.probes.collate import collate_sentences

log = logging.getLogger(__name__)


class ProbeDataset(Dataset):
    """One item per cached sentence, in the layout of :func:`collate_sentences`.

    Maps stay memory-mapped float16 until an item is asked for, so memory does not grow with
    the corpus.
    """

    def __init__(self, cache: AttentionCache, sentences: list[Sentence], relation_ids: dict[str, int],
                 glove: Glove | None, label_level: str = "base"):
        self.cache, self.sentences, self.glove = cache, sentences, glove
        self.relation_ids, self.label_level = relation_ids, label_level
        self.indices = cache.kept
        missing = [sentences[i].sent_id for i in self.indices if sentences[i].heads is None]
        if missing:
            raise ValueError(f"probes need gold trees; {len(missing)} sentences have none (first: {missing[0]})")

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> dict[str, torch.Tensor]:
        i = self.indices[j]
        sent = self.sentences[i]
        rels = relation_labels(sent, self.label_level)
        vectors = self.glove.lookup(sent.words) if self.glove is not None else np.zeros((len(sent), 1), np.float32)
        return {
            "maps": torch.from_numpy(self.cache.maps(i).astype(np.float32)),
            "heads": torch.from_numpy(sent.heads),
            "rels": torch.tensor([self.relation_ids.get(r, -1) for r in rels], dtype=torch.long),
            "punct": torch.from_numpy(sent.is_punct),
            "vectors": torch.from_numpy(vectors),
        }


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length sentences in a fresh random order each epoch.

    The probe's inputs are (B, K, N, N+1) padded to the longest sentence, so a random batch of
    EWT pays for its one 60-word sentence with every 15-word one; sorting within pools of
    ``pool`` batches cuts that padding while keeping the order random.

    The order depends only on ``seed`` and the epoch Lightning passes to ``set_epoch``, so a run
    resumed from a checkpoint sees the batches an uninterrupted run would have seen.

    Under DDP (``num_replicas`` > 1) every rank forms the same batches and takes every
    ``num_replicas``-th; a short rank repeats its first batches so that all ranks step together.
    Evaluation loaders are not split (``num_replicas=1``): every rank scores the whole split, and
    the synced UAS (correct and total summed over ranks) is then exactly the single-process one.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0, pool: int = 50,
                 max_pairs: int | None = None, num_replicas: int = 1, rank: int = 0):
        self.lengths, self.batch_size, self.shuffle = np.asarray(lengths), batch_size, shuffle
        self.seed, self.pool, self.epoch = seed, pool, 0
        # cap on B * N^2 word pairs: a batch of 150-word sentences would otherwise hold
        # (32, K, 150, 151) floats twice over, and peak memory would follow the longest sentences
        self.max_pairs = max_pairs
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        self.num_replicas, self.rank = num_replicas, rank
        self._plan: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def sampler(self) -> LengthBucketBatchSampler:
        # Lightning calls set_epoch on ``batch_sampler.sampler``, never on the batch sampler itself
        return self

    def _batches(self) -> list[list[int]]:
        # len() is asked for often (Lightning's loops, the progress bar): plan each epoch once
        if self._plan is not None and self._plan[0] == self.epoch:
            return self._plan[1]
        self._plan = (self.epoch, self._plan_epoch())
        return self._plan[1]

    def _plan_epoch(self) -> list[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        order = rng.permutation(len(self.lengths)) if self.shuffle else np.arange(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.batch_size * self.pool):
            chunk = order[start : start + self.batch_size * self.pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            batch = []
            for i in chunk.tolist():
                n = int(self.lengths[i])  # ascending, so the newcomer sets the padded length
                if batch and (len(batch) == self.batch_size or
                              (self.max_pairs and (len(batch) + 1) * n * n > self.max_pairs)):
                    batches.append(batch)
                    batch = []
                batch.append(i)
            if batch:
                batches.append(batch)
        if self.shuffle:
            rng.shuffle(batches)
        if self.num_replicas == 1:
            return batches
        per_rank = -(-len(batches) // self.num_replicas)
        padded = batches + batches[: per_rank * self.num_replicas - len(batches)]
        return padded[self.rank :: self.num_replicas]

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())


def relation_labels(sent: Sentence, level: str) -> list[str]:
    # LAS in the CoNLL 2018 evaluation ignores subtypes; "full" keeps them (nsubj:pass)
    return sent.base_rels if level == "base" else sent.rels


class ProbeDataModule(pl.LightningDataModule):
    """Extracts (or reads from the cache) attention for the train/val/test splits."""

    def __init__(
        self,
        encoder: EncoderSpec,
        corpus: Corpus,
        extraction: ExtractionSettings,
        cache_root: str,
        glove: Glove | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        max_pairs: int | None = 50_000,
        num_workers: int = 0,
        splits: dict[str, str] | None = None,
        label_level: str = "base",
        seed: int | None = None,
    ):
        super().__init__()
        self.encoder, self.corpus, self.extraction = encoder, corpus, extraction
        self.cache_root, self.glove = cache_root, glove
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.max_pairs = max_pairs
        self.splits = dict(splits or {"train": "train", "val": "dev", "test": "test"})
        if label_level not in ("base", "full"):
            raise ValueError(f"label_level must be 'base' or 'full', not {label_level!r}")
        self.label_level = label_level
        # the batch order's seed; None takes torch's, which seed_everything(cfg.seed) has set
        self.seed = torch.initial_seed() % 2**32 if seed is None else seed
        self.datasets: dict[str, ProbeDataset] = {}
        self._loaded: dict = {}
        self.relations: list[str] = []

    def _load(self) -> dict:
        # Lightning calls prepare_data on every fit/validate/test: parse the corpora once
        if not self._loaded:
            self._loaded = {
                role: get_attention(self.encoder, self.corpus, split, self.extraction, self.cache_root)
                for role, split in self.splits.items()
            }
        return self._loaded

    def prepare_data(self) -> None:
        self._load()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        loaded = self._load()  # other DDP ranks load here; rank 0 reuses prepare_data's
        train_cache, train_sents = loaded["train"]
        counts = Counter(r for i in train_cache.kept for r in relation_labels(train_sents[i], self.label_level))
        self.relations = [r for r, _ in counts.most_common()]
        ids = {r: k for k, r in enumerate(self.relations)}
        for role, (cache, sents) in loaded.items():
            self.datasets[role] = ProbeDataset(cache, sents, ids, self.glove, self.label_level)
            log.info("%s (%s): %d sentences, %d skipped", role, self.splits[role], len(cache), len(cache.skipped))
        if self.glove is not None:
            cov = self.glove.coverage(w for i in train_cache.kept for w in train_sents[i].words)
            log.info("GloVe (%s) covers %.1f%% of training words", self.glove.source, 100 * cov)

    @property
    def num_maps(self) -> int:
        return self.datasets["train"].cache.num_maps

    @property
    def vector_dim(self) -> int:
        return self.glove.dim if self.glove is not None else 1

    def _loader(self, role: str, shuffle: bool, batch_size: int) -> DataLoader:
        ds = self.datasets[role]
        lengths = np.array([len(ds.sentences[i]) for i in ds.indices])
        # training batches are split over DDP ranks; evaluation is not (see the sampler)
        trainer = getattr(self, "trainer", None)
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer and role == "train" else (1, 0)
        sampler = LengthBucketBatchSampler(lengths, batch_size, shuffle, seed=self.seed, max_pairs=self.max_pairs,
                                           num_replicas=replicas, rank=rank)
        return DataLoader(ds, batch_sampler=sampler, collate_fn=collate_sentences,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False, self.eval_batch_size)
