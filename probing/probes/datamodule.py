"""Probe inputs per split: the task's queries and gold sets, frozen GloVe vectors and, for the
attention probes, cached word-level maps."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from probing.attention.extract import ExtractionSettings
from probing.attention.layout import Layout
from probing.attention.store import open_split
from probing.batching import fill_batches
from probing.data.corpus import Corpus
from probing.data.glove import Glove
from probing.data.sentence import Sentence
from probing.probes.batch import ProbeItem, collate
from probing.probes.tasks import Example, Task

if TYPE_CHECKING:
    from probing.attention.encoders import EncoderSpec

log = logging.getLogger(__name__)


def _padded(rows: list[tuple[int, ...]]) -> np.ndarray:
    """Ragged tuples -> (len, longest) long array padded with -1."""
    out = np.full((len(rows), max((len(r) for r in rows), default=1)), -1, dtype=np.int64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


class VectorTable:
    """GloVe rows of a split's vocabulary, looked up once: an item's vectors are then one numpy
    take, not a dictionary lookup per word per epoch. Without GloVe every vector is one zero."""

    def __init__(self, glove: Glove | None, sentences: list[Sentence]):
        self.dim = glove.dim if glove is not None else 1
        vocab = sorted({w.lower() for s in sentences for w in s.words})
        self.index = {w: i for i, w in enumerate(vocab)}
        self.table = glove.lookup(vocab) if glove is not None else np.zeros((len(vocab), 1), np.float32)

    def rows(self, words: list[str]) -> np.ndarray:
        return np.array([self.index[w.lower()] for w in words], dtype=np.int64)


class ProbeDataset(Dataset):
    """One :class:`ProbeItem` per stored sentence.

    Examples, label ids and vector rows are computed once; maps are read from the store (float16,
    one ``pread``) only when an item is asked for, so memory does not grow with the corpus.
    """

    def __init__(self, sentences: list[Sentence], task: Task, label_ids: dict[str, int], vectors: VectorTable,
                 store=None, first_as_start: bool = True):
        self.store, self.sentences, self.vectors = store, sentences, vectors
        self.first_as_start = first_as_start
        self.indices = store.kept if store is not None else np.arange(len(sentences))
        self.layout = getattr(store, "layout", Layout())
        examples = [task.example(sentences[i]) for i in self.indices]
        self.lengths = np.array([len(sentences[i]) for i in self.indices])
        self.vector_rows = [vectors.rows(sentences[i].words) for i in self.indices]
        self.items = [self._item(len(sentences[i]), e, task, label_ids) for i, e in zip(self.indices, examples)]

    def _item(self, n: int, example: Example, task: Task, label_ids: dict[str, int]) -> ProbeItem:
        """The item without its vectors and maps, which :meth:`__getitem__` fills in."""
        labels = [label_ids.get(r, -1) for r in example.labels] if example.labels is not None else [-1] * len(example)
        return ProbeItem(n=n, spans=_padded(example.spans), gold=_padded(example.gold),
                         labels=np.array(labels, dtype=np.int64), scored=np.asarray(example.scored, dtype=bool),
                         vectors=np.zeros((0, 0), np.float32), root=task.root, layout=self.layout,
                         first_as_start=self.first_as_start)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, j: int) -> ProbeItem:
        maps = self.store.maps(self.indices[j]) if self.store is not None else None
        return replace(self.items[j], vectors=self.vectors.table[self.vector_rows[j]], maps=maps)


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length sentences in a fresh random order each epoch.

    The probe's inputs are (B, Q, N, M) padded to the longest sentence, so a random batch of
    EWT pays for its one 60-word sentence with every 15-word one; sorting within pools of
    ``pool`` batches cuts that padding while keeping the order random.

    The order depends only on ``seed`` and the epoch Lightning passes to ``set_epoch``, so a run
    resumed from a checkpoint sees the batches an uninterrupted run would have seen.

    With ``max_pairs`` the number of batches changes from epoch to epoch. Lightning reads len()
    when it builds the loader and validates when the batch index reaches it, so a loader built
    once skipped validation in every epoch shorter than the first (early stopping then chose among
    a few epochs). The trainer therefore rebuilds the loader each epoch
    (``reload_dataloaders_every_n_epochs: 1``; the datamodule refuses a trainer that does not) and
    the datamodule builds it for the coming epoch.

    Under DDP (``num_replicas`` > 1) every rank forms the same batches and takes every
    ``num_replicas``-th; a short rank repeats its first batches so that all ranks step together.
    Evaluation loaders are not split (``num_replicas=1``): every rank scores the whole split, and
    the synced UAS (correct and total summed over ranks) is then exactly the single-process one.
    """

    def __init__(self, lengths: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0, pool: int = 50,
                 max_pairs: int | None = None, num_replicas: int = 1, rank: int = 0, epoch: int = 0):
        self.lengths, self.batch_size, self.shuffle = np.asarray(lengths), batch_size, shuffle
        self.seed, self.pool, self.epoch = seed, pool, epoch
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
            batches += fill_batches(chunk.tolist(), self.lengths, self.batch_size, self.max_pairs, power=2)
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


class ProbeDataModule(pl.LightningDataModule):
    """Loads each split's sentences and, when the probe reads attention, their maps (extracting
    them first if the cache lacks them). ``attention=False`` (attention-free probes) reads the
    corpus only: no model is loaded and nothing is extracted."""

    def __init__(
        self,
        encoder: EncoderSpec,
        corpus: Corpus,
        extraction: ExtractionSettings,
        cache_root: str,
        task: Task,
        glove: Glove | None,
        attention: bool,
        *,
        batch_size: int,
        eval_batch_size: int,
        max_pairs: int | None,
        pool: int,
        num_workers: int,
        splits: dict[str, str],
        seed: int | None,
        root_from_first_position: bool,
    ):
        super().__init__()
        self.encoder, self.corpus, self.extraction = encoder, corpus, extraction
        self.cache_root, self.task, self.glove, self.attention = cache_root, task, glove, attention
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.max_pairs, self.pool = max_pairs, pool
        self.root_from_first_position = root_from_first_position
        self.splits = dict(splits)
        # the batch order's seed; None takes torch's, which seed_everything(cfg.seed) has set
        self.seed = torch.initial_seed() % 2**32 if seed is None else seed
        self.datasets: dict[str, ProbeDataset] = {}
        self._loaded: dict = {}
        self.labels: list[str] = []

    def _read(self, split: str) -> tuple[object | None, list[Sentence]]:
        if self.attention:
            # the one place probes ask for attention
            return open_split(self.encoder, self.corpus, split, self.extraction, self.cache_root)
        return None, [s for part in split.split("+") for s in self.corpus.read(part)[0]]

    def _load(self) -> dict:
        # Lightning calls prepare_data on every fit/validate/test: parse the corpora once
        if not self._loaded:
            self._loaded = {role: self._read(split) for role, split in self.splits.items()}
        return self._loaded

    def prepare_data(self) -> None:
        self._load()

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        loaded = self._load()  # other DDP ranks load here; rank 0 reuses prepare_data's
        train_store, train_sents = loaded["train"]
        kept = train_store.kept if train_store is not None else range(len(train_sents))
        counts = Counter(label for i in kept for label in (self.task.example(train_sents[i]).labels or []))
        self.labels = [label for label, _ in counts.most_common()]
        ids = {label: k for k, label in enumerate(self.labels)}
        for role, (store, sents) in loaded.items():
            self.datasets[role] = ProbeDataset(sents, self.task, ids, VectorTable(self.glove, sents), store,
                                               self.root_from_first_position)
            skipped = len(store.skipped) if store is not None else 0
            log.info("%s (%s): %d sentences, %d skipped", role, self.splits[role], len(self.datasets[role]), skipped)
        if self.glove is not None:
            cov = self.glove.coverage(w for i in kept for w in train_sents[i].words)
            log.info("GloVe (%s) covers %.1f%% of training words", self.glove.source, 100 * cov)

    @property
    def num_maps(self) -> int:
        store = self._load()["train"][0]
        return store.num_maps if store is not None else 0

    @property
    def vector_dim(self) -> int:
        return self.glove.dim if self.glove is not None else 1

    def _loader(self, role: str, shuffle: bool, batch_size: int) -> DataLoader:
        ds = self.datasets[role]
        # training batches are split over DDP ranks; evaluation is not (see the sampler)
        trainer = getattr(self, "trainer", None)
        replicas, rank = (trainer.world_size, trainer.global_rank) if trainer and role == "train" else (1, 0)
        epoch = trainer.current_epoch if trainer and role == "train" else 0
        if trainer and role == "train" and self.max_pairs and trainer.reload_dataloaders_every_n_epochs != 1:
            # the sampler's length changes per epoch: without a reload Lightning skips validation
            raise ValueError("datamodule.max_pairs makes the number of training batches change from epoch to epoch; "
                             "set trainer.reload_dataloaders_every_n_epochs=1 (conf/trainer/default.yaml does), "
                             "or Lightning skips validation in every epoch shorter than the first")
        sampler = LengthBucketBatchSampler(ds.lengths, batch_size, shuffle, seed=self.seed, pool=self.pool,
                                           max_pairs=self.max_pairs, num_replicas=replicas, rank=rank, epoch=epoch)
        return DataLoader(ds, batch_sampler=sampler, collate_fn=collate,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", False, self.eval_batch_size)
