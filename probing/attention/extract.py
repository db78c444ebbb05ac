"""Extract word-level attention for a corpus split into the cache, once.

    python -m probing.attention.extract model=mpnet_base data=ud_ewt split=dev
    python -m probing.attention.extract -m split=train shard=0,1,2,3 num_shards=4 hydra/launcher=joblib
    python -m probing.attention.extract split=train num_shards=4      # merge the shards
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from probing.attention.cache import AttentionCache, CacheError, CacheWriter, CombinedCache, cache_key_hash
from probing.attention.encoders import EncoderSpec
from probing.attention.wordlevel import MODES, merge_batch, merge_matrices, piece_to_token
from probing.data.corpus import Corpus
from probing.data.sentence import Sentence

log = logging.getLogger(__name__)


class ExtractionError(ValueError):
    pass


@dataclass
class ExtractionSettings:
    """``max_length`` counts pieces with the special tokens; ``None`` means the model's limit."""

    mode: str = "mean"
    max_length: int | None = None
    on_overlong: str = "skip"
    batch_size: int = 64
    max_tokens: int | None = 4096
    device: str = "auto"
    flush_every: int = 20

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"extract.mode must be one of {MODES}, not {self.mode!r}")
        if self.on_overlong not in ("skip", "error"):
            raise ValueError(f"extract.on_overlong must be 'skip' or 'error', not {self.on_overlong!r}")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def model_max_length(tokenizer, model) -> int:
    limit = tokenizer.model_max_length
    # tokenizers without a configured limit report a huge sentinel
    return int(limit) if limit < 100_000 else int(model.config.max_position_embeddings)


@dataclass
class Tokenized:
    input_ids: list[list[int]]
    token_of_piece: list[list[int]]
    unk_words: int


def tokenize(tokenizer, sentences: list[Sentence]) -> Tokenized:
    """Tokenise pre-split words; a word that yields no pieces (a lone control character, say)
    becomes the unknown token so that every word keeps a row and a column."""
    enc = tokenizer([s.words for s in sentences], is_split_into_words=True, add_special_tokens=True)
    ids, tokens, unk = [], [], 0
    for b, sent in enumerate(sentences):
        word_ids = enc.word_ids(b)
        input_ids = enc["input_ids"][b]
        present = {w for w in word_ids if w is not None}
        if len(present) < len(sent):
            words = [w if i in present else tokenizer.unk_token for i, w in enumerate(sent.words)]
            unk += len(sent) - len(present)
            one = tokenizer(words, is_split_into_words=True, add_special_tokens=True)
            word_ids, input_ids = one.word_ids(), one["input_ids"]
        ids.append(input_ids)
        tokens.append(piece_to_token(word_ids, len(sent)))
    return Tokenized(ids, tokens, unk)


def length_sorted_batches(lengths: dict[int, int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Group sentence indices of similar piece length so that batches carry little padding.

    A batch holds at most ``batch_size`` sentences and, with ``max_tokens``, at most that many
    padded pieces, so short sentences share big batches and long ones bound the memory of the
    (B, L*H, P, P) attention stack.
    """
    order = sorted(lengths, key=lambda i: (lengths[i], i))
    batches, batch = [], []
    for i in order:
        # sorted ascending, so the newcomer sets the padded length
        if batch and (len(batch) == batch_size or (max_tokens and (len(batch) + 1) * lengths[i] > max_tokens)):
            batches.append(batch)
            batch = []
        batch.append(i)
    return batches + [batch] if batch else batches


def pad_batch(input_ids: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    P = max(map(len, input_ids))
    ids = torch.full((len(input_ids), P), pad_id, dtype=torch.long)
    mask = torch.zeros((len(input_ids), P), dtype=torch.long)
    for b, row in enumerate(input_ids):
        ids[b, : len(row)] = torch.tensor(row)
        mask[b, : len(row)] = 1
    return ids.to(device), mask.to(device)


def forward_attention(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, P) ids -> (B, L*H, P, P) piece attention, layer-major."""
    out = model(input_ids=ids, attention_mask=mask, output_attentions=True)
    attn = torch.stack(out.attentions, dim=1)
    B, L, H, P, _ = attn.shape
    return attn.reshape(B, L * H, P, P)


def extract_into(writer: CacheWriter, tokenizer, model, tok: Tokenized, batches: list[list[int]],
                 settings: ExtractionSettings, device) -> None:
    """Run the model over ``batches`` of sentence indices and append their maps.

    Batches whose sentences are all stored already (a resumed cache) are passed over: the
    batch plan is fixed before anything runs, so a resumed run computes exactly the batches
    a clean run would, and writes the same bytes.
    """
    batches = [b for b in batches if not all(writer.done(i) for i in b)]
    with torch.inference_mode():
        for step, batch in enumerate(tqdm(batches, desc="extract", unit="batch", mininterval=2)):
            ids, mask = pad_batch([tok.input_ids[i] for i in batch], tokenizer.pad_token_id, device)
            attn = forward_attention(model, ids, mask).float()
            token_of_piece = [tok.token_of_piece[i] for i in batch]
            T = max(max(t) for t in token_of_piece) + 1
            F, S = merge_matrices(token_of_piece, ids.shape[1], T, settings.mode)
            words = merge_batch(attn, F.to(device), S.to(device)).half().cpu().numpy()
            for b, i in enumerate(batch):
                if not writer.done(i):  # a batch half-stored under another batch plan
                    t = token_of_piece[b][-1] + 1
                    writer.add(i, words[b, :, :t, :t])
            if (step + 1) % settings.flush_every == 0:
                writer.flush()


def data_key(corpus: Corpus, split: str) -> dict:
    return {"name": corpus.name, "split": split, "file": corpus.path(split).name, "sha256": corpus.fingerprint(split)}


def cache_key(encoder: EncoderSpec, data: dict, settings: ExtractionSettings) -> dict:
    return {
        "model": encoder.identity(),
        "data": data,
        "mode": settings.mode,
        "max_length": settings.max_length or "model",
    }


def cache_dir_for(cache_root: str | Path, encoder: EncoderSpec, label: str, key: dict) -> Path:
    tag = "-random" if encoder.random_init else ""
    name = f"{label}-{key['mode']}-{key['max_length']}-{cache_key_hash(key)}"
    return Path(cache_root).expanduser() / f"{encoder.name}{tag}" / name


@dataclass
class Plan:
    """Everything a (sharded) extraction needs, fixed before any batch runs."""

    tokenizer: object
    model: object
    device: torch.device
    tok: Tokenized
    skipped: dict[int, str]
    batches: list[list[int]]
    num_layers: int
    num_heads: int


def plan_extraction(encoder: EncoderSpec, sentences: list[Sentence], settings: ExtractionSettings,
                    source: str) -> Plan:
    device = resolve_device(settings.device)
    tokenizer, model = encoder.load(device)
    limit = settings.max_length or model_max_length(tokenizer, model)
    tok = tokenize(tokenizer, sentences)
    if tok.unk_words:
        log.warning("%s: %d words gave no word pieces and were fed as %s", source, tok.unk_words, tokenizer.unk_token)
    skipped = {}
    for i, ids in enumerate(tok.input_ids):
        if len(ids) > limit:
            if settings.on_overlong == "error":
                raise ExtractionError(
                    f"{source}: sentence {sentences[i].sent_id} has {len(ids)} word pieces, over the "
                    f"limit of {limit}; set extract.on_overlong=skip to leave such sentences out"
                )
            skipped[i] = f"longer than {limit} pieces ({len(ids)})"
    if skipped:
        log.warning("%s: skipped %d of %d sentences longer than %d pieces", source, len(skipped), len(sentences), limit)
    todo = {i: len(ids) for i, ids in enumerate(tok.input_ids) if i not in skipped}
    batches = length_sorted_batches(todo, settings.batch_size, settings.max_tokens)
    cfg = model.config
    return Plan(tokenizer, model, device, tok, skipped, batches, cfg.num_hidden_layers, cfg.num_attention_heads)


def build_cache(directory: Path, key: dict, encoder: EncoderSpec, sentences: list[Sentence],
                settings: ExtractionSettings, source: str) -> AttentionCache:
    plan = plan_extraction(encoder, sentences, settings, source)
    writer = CacheWriter(directory, key, len(sentences), plan.num_layers, plan.num_heads)
    log.info("extracting %d sentences of %s with %s on %s into %s (%d stored already)",
             len(sentences) - len(plan.skipped), source, encoder.name, plan.device, directory, writer.num_done)
    extract_into(writer, plan.tokenizer, plan.model, plan.tok, plan.batches, settings, plan.device)
    return writer.finish(plan.skipped)


def attention_for(encoder: EncoderSpec, units: list[Sentence], data: dict, settings: ExtractionSettings,
                  cache_root: str | Path, label: str, source: str, shard: int | None = None,
                  num_shards: int = 1) -> AttentionCache:
    """Cached maps of ``units`` (sentences, or document chunks joined into one word list),
    extracting first on a miss. ``data`` identifies the units in the cache key.

    With ``shard``, extract only that shard (see :mod:`probing.attention.shards`); with
    ``num_shards`` > 1 and no shard, merge the finished shards. A complete set of shards left
    by an earlier sharded run is merged rather than extracted again.
    """
    from probing.attention import shards

    key = cache_key(encoder, data, settings)
    directory = cache_dir_for(cache_root, encoder, label, key)
    if shard is not None:
        try:  # merged already: the shard has nothing left to do
            return AttentionCache(directory)
        except CacheError:
            return shards.extract_shard(directory, key, encoder, units, settings, source, shard, num_shards)
    try:
        # the checksum is checked on the first open after a write, and again if the file changes
        cache = AttentionCache(directory, verify="auto")
        log.info("attention cache hit: %s", directory)
        return cache
    except CacheError:
        pass
    # parallel jobs (a joblib sweep, DDP ranks) may miss the same cache at once: one builds it
    # under the lock, and the others find it complete when they get the lock
    with _build_lock(directory):
        try:
            return AttentionCache(directory, verify="auto")
        except CacheError as e:
            if (directory / "meta.json").is_file():
                log.warning("%s; (re)building it", e)
        found = num_shards if num_shards > 1 else shards.complete_shard_count(directory)
        if found:
            return shards.merge_shards(directory, key, found)
        return build_cache(directory, key, encoder, units, settings, source)


@contextlib.contextmanager
def _build_lock(directory: Path):
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f"{directory.name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def get_attention(encoder: EncoderSpec, corpus: Corpus, split: str, settings: ExtractionSettings,
                  cache_root: str | Path, shard: int | None = None,
                  num_shards: int = 1) -> tuple[AttentionCache, list[Sentence]]:
    """The split's sentences and their cached maps, extracting first if the cache lacks them.

    ``split`` may join splits with ``+`` (``train+dev+test``): each keeps its own cache, and
    they are read as one (:class:`CombinedCache`).
    """
    if "+" in split:
        if shard is not None:
            raise ValueError("shard= extracts one split at a time; run it for each part of the split")
        parts = [get_attention(encoder, corpus, s, settings, cache_root, shard, num_shards) for s in split.split("+")]
        return CombinedCache([c for c, _ in parts]), [s for _, sents in parts for s in sents]
    sentences, _ = corpus.read(split)
    cache = attention_for(encoder, sentences, data_key(corpus, split), settings, cache_root,
                          f"{corpus.name}-{split}", str(corpus.path(split)), shard, num_shards)
    return cache, sentences


def summary(cache: AttentionCache, sentences: list[Sentence]) -> dict:
    return {
        "cache_dir": str(cache.dir),
        "sentences": len(sentences),
        "stored": len(cache),
        "skipped": len(cache.skipped),
        "skip_reasons": sorted(set(cache.skipped.values()))[:10],
        "num_layers": cache.num_layers,
        "num_heads": cache.num_heads,
        "bytes": cache.meta["data_bytes"],
        "weights": int(cache.meta["data_bytes"] // 2),
    }


def run(cfg) -> dict:
    from hydra.utils import instantiate

    encoder, corpus = instantiate(cfg.model), instantiate(cfg.data)
    settings = instantiate(cfg.extract)
    shard, num_shards = cfg.get("shard"), cfg.get("num_shards", 1)
    cache, sentences = get_attention(encoder, corpus, cfg.split, settings, cfg.paths.attention_cache,
                                     shard, num_shards)
    result = summary(cache, sentences)
    if shard is not None:
        result.update(shard=shard, num_shards=num_shards)
    log.info("extraction summary: %s", json.dumps(result))
    out = Path(cfg.paths.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "extraction.json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    import hydra

    import probing  # noqa: F401  (registers the config resolvers)

    hydra.main(version_base="1.3", config_path="../../conf", config_name="extract")(run)()
