"""Table 2: coreference antecedent selection from attention, on GUM ``Entity=`` brackets.

Documents are read by the model as chunks of whole sentences (:func:`document_chunks`), so the
attention comes per chunk: ``maps`` (K, T, T) over the chunk's concatenated words, with the
special tokens where the store's layout puts them. Mentions, antecedents and baselines are all
restricted to one chunk (the attention window).

Rules:
- Mention head word: the first word of the span whose gold syntactic head lies outside the span
  (or is ROOT); the last word of the span when no tree is given or none qualifies.
- Order: mention a precedes mention m when a's head word comes before m's head word (attention
  is scored between head words); ties between equal head positions go to the later start.
- A mention is scored when at least one preceding mention in the chunk has the same entity id
  (same document); its antecedents are all such mentions.
- Attention: the head word of m attends most (over the chunk's words, excluding the special
  tokens and itself) to the head word of any antecedent.
- Mention type from the head word's UPOS: PRON -> pronoun, PROPN -> proper, else nominal.
- Baselines: the nearest preceding mention (any entity), and the nearest preceding mention whose
  head word matches m's head word lowercased; right when it corefers. When no earlier mention
  shares the head word, the paper does not say what the baseline picks (§4.3: "Picking the
  nearest other mention with the same head word as the current mention"; the released code has
  no coreference part), so both readings are counted in one pass: ``none`` (strict: counted
  wrong) and ``nearest`` (falls back to the nearest mention). ``CorefJob.same_head_fallback``
  names the one reported as ``same_head_accuracy``; ``none`` by default, a choice.
- GUM link types (coref, ana, appos, pred, ...) are not filtered: one entity id = one entity.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from probing.analysis import paper
from probing.analysis._common import BOTH, head_name
from probing.analysis.base import Context, Section, layout_of
from probing.attention.layout import Layout
from probing.data.corpus import Corpus
from probing.data.sentence import Sentence

TYPES = ("all", "pronoun", "proper", "nominal")
TYPE_COLUMNS = {"all": "All", "pronoun": "Pronoun", "proper": "Proper", "nominal": "Nominal"}
FALLBACKS = ("none", "nearest")  # what the same-head-word baseline picks when no head word matches
SAME_HEAD_ROWS = {"none": "nearest with same head word (none: wrong)",
                  "nearest": "nearest with same head word, else nearest mention"}


@dataclass(frozen=True)
class Mention:
    """One mention; word indices are into the concatenated words of the sentences given."""

    entity: str
    start: int
    end: int  # inclusive
    head: int
    doc_id: str | None = None

    def corefers(self, other: Mention) -> bool:
        return self.entity == other.entity and self.doc_id == other.doc_id


def parse_entity_field(value: str) -> list[tuple[str, str]]:
    """Split one GUM/CorefUD ``Entity`` value into ``(kind, entity_id)`` events in order.

    ``kind`` is "open", "close" or "single"; e.g. ``"(7-abstract-...(3-abstract-...)"`` ->
    ``[("open", "7"), ("single", "3")]`` and ``"7)6)"`` -> ``[("close", "7"), ("close", "6")]``.
    """
    events, i = [], 0
    while i < len(value):
        if value[i] == "(":
            j = i + 1
            while j < len(value) and value[j] not in "()":
                j += 1
            eid = value[i + 1 : j].split("-")[0]
            if j < len(value) and value[j] == ")":
                events.append(("single", eid))
                j += 1
            else:
                events.append(("open", eid))
            i = j
        else:
            j = value.find(")", i)
            if j < 0:
                raise ValueError(f"unbalanced Entity value {value!r}")
            events.append(("close", value[i:j]))
            i = j + 1
    return events


def _global_heads(sentences: Sequence) -> np.ndarray | None:
    """(N,) 0-based head of every word in the concatenation, -1 for ROOT; None without trees."""
    if any(s.heads is None for s in sentences):
        return None
    out, offset = [], 0
    for s in sentences:
        h = np.asarray(s.heads)
        out.append(np.where(h > 0, h - 1 + offset, -1))
        offset += len(s)
    return np.concatenate(out) if out else np.zeros(0, dtype=int)


def mention_head(start: int, end: int, heads: np.ndarray | None) -> int:
    """First word in [start, end] whose head is outside the span (or ROOT); else ``end``."""
    if heads is None:
        return end
    span = heads[start : end + 1]
    outside = np.flatnonzero((span < start) | (span > end))
    return start + int(outside[0]) if len(outside) else end


def parse_mentions(sentences: Sequence) -> list[Mention]:
    """Mentions in consecutive sentences (one document or one chunk), sorted by (head, start).

    A mention still open at the end, or closed without an opening in the given sentences, is
    dropped. Nested mentions of the same entity close innermost first.
    """
    heads = _global_heads(sentences)
    stacks: dict[str, list[int]] = defaultdict(list)
    spans, offset = [], 0
    for s in sentences:
        for w, misc in enumerate(s.misc or [None] * len(s)):
            value = (misc or {}).get("Entity")
            for kind, eid in parse_entity_field(value) if value else ():
                g = offset + w
                if kind == "single":
                    spans.append((eid, g, g, s.doc_id))
                elif kind == "open":
                    stacks[eid].append(g)
                elif stacks[eid]:
                    spans.append((eid, stacks[eid].pop(), g, s.doc_id))
        offset += len(s)
    mentions = [Mention(e, a, b, mention_head(a, b, heads), d) for e, a, b, d in spans]
    return sorted(mentions, key=lambda m: (m.head, m.start))


def mention_type(upos: str | None) -> str:
    return {"PRON": "pronoun", "PROPN": "proper"}.get(upos or "", "nominal")


def document_chunks(sentences: Iterable, max_words: int) -> Iterator[list]:
    """Group consecutive sentences of one ``doc_id`` into chunks of at most ``max_words`` words.

    Sentences are never split; a sentence longer than ``max_words`` is a chunk of its own (the
    caller truncates it). Lazy, so a corpus streams through.
    """
    chunk, size, doc = [], 0, object()
    for s in sentences:
        if chunk and (s.doc_id != doc or size + len(s) > max_words):
            yield chunk
            chunk, size = [], 0
        chunk.append(s)
        size += len(s)
        doc = s.doc_id
    if chunk:
        yield chunk


@dataclass
class CorefResult:
    """Accuracies per mention type (``TYPES`` order): heads (4, K) and the baselines, the
    same-head-word one under both readings (``same_head``: none -> wrong; ``same_head_nearest``:
    none -> the nearest mention)."""

    counts: np.ndarray  # (4,)
    head_accuracy: np.ndarray  # (4, K)
    nearest: np.ndarray  # (4,)
    same_head: np.ndarray  # (4,)
    num_heads: int
    table: list[dict] = field(default_factory=list)
    same_head_nearest: np.ndarray | None = None  # (4,)

    def same_head_under(self, fallback: str) -> np.ndarray:
        """(4,) the same-head-word baseline under ``fallback`` (one of ``FALLBACKS``)."""
        check_fallback(fallback)
        return self.same_head if fallback == "none" else self.same_head_nearest

    @property
    def best_head(self) -> str:
        return head_name(int(np.argmax(self.head_accuracy[0])), self.num_heads)


class CorefAccumulator:
    """Streaming counts over ``(maps, sentences_in_chunk)`` pairs."""

    def __init__(self, num_heads_total: int, num_heads: int, layout: Layout = BOTH):
        self.k, self.num_heads, self.layout = num_heads_total, num_heads, layout
        self.n = np.zeros(len(TYPES))
        self.heads = np.zeros((len(TYPES), num_heads_total))
        self.nearest = np.zeros(len(TYPES))
        self.same_head = np.zeros(len(TYPES))
        self.same_head_nearest = np.zeros(len(TYPES))

    def update(self, maps, sentences: Sequence) -> None:
        """Add one chunk. If ``maps`` covers fewer words than the sentences (the caller cut the
        chunk to the model's length), only mentions inside the words it covers count."""
        total = sum(len(s) for s in sentences)
        n = self.layout.num_words(np.shape(maps)[-1])
        if n > total:
            raise ValueError(f"maps cover {n} words but the chunk has only {total}")
        mentions = [m for m in parse_mentions(sentences) if m.end < n]
        words = [w.lower() for s in sentences for w in s.words]
        upos = [u for s in sentences for u in (s.upos or [None] * len(s))]
        scored = []  # (mention, antecedents, preceding)
        for i, m in enumerate(mentions):
            before = [p for p in mentions[:i] if p.head < m.head]
            ants = [p for p in before if p.corefers(m)]
            if ants:
                scored.append((m, ants, before))
        if not scored:
            return
        rows = np.array([m.head for m, _, _ in scored])
        # only the mention-head rows are needed: copy those, not the whole (K, T, T) map
        first = self.layout.first_word
        a = np.array(np.asarray(maps)[:, rows + first, first : first + n], dtype=np.float32)  # (K, M, n)
        if a.shape[0] != self.k:
            raise ValueError(f"maps hold {a.shape[0]} heads, expected {self.k}")
        a[:, np.arange(len(rows)), rows] = -np.inf  # a word may not pick itself
        # (K, M) the word each mention head attends to most; none if no mass on any word
        pred = np.where(a.max(-1) > 0, a.argmax(-1), -2)
        for j, (m, ants, before) in enumerate(scored):
            kinds = [0, TYPES.index(mention_type(upos[m.head]))]
            hit = np.isin(pred[:, j], [p.head for p in ants])
            same = [p for p in before if words[p.head] == words[m.head]]
            nearest = before[-1].corefers(m)
            for t_i in kinds:
                self.n[t_i] += 1
                self.heads[t_i] += hit
                self.nearest[t_i] += nearest
                self.same_head[t_i] += bool(same) and same[-1].corefers(m)
                self.same_head_nearest[t_i] += same[-1].corefers(m) if same else nearest

    def result(self) -> CorefResult:
        n = np.maximum(self.n, 1)
        res = CorefResult(
            self.n.astype(int),
            self.heads / n[:, None],
            self.nearest / n,
            self.same_head / n,
            self.num_heads,
            same_head_nearest=self.same_head_nearest / n,
        )
        best = int(np.argmax(res.head_accuracy[0]))
        rows = {
            "nearest mention": res.nearest,
            SAME_HEAD_ROWS["none"]: res.same_head,
            SAME_HEAD_ROWS["nearest"]: res.same_head_nearest,
            f"head {head_name(best, self.num_heads)}": res.head_accuracy[:, best],
        }
        for model, acc in rows.items():
            res.table.append(
                {"model": model, **{TYPE_COLUMNS[t]: float(a) for t, a in zip(TYPES, acc)}}
            )
        res.table.append(
            {"model": "count", **{TYPE_COLUMNS[t]: int(c) for t, c in zip(TYPES, res.counts)}}
        )
        return res


def coref_accuracies(
    chunk_pairs: Iterable, num_heads_total: int, *, num_heads: int, layout: Layout = BOTH
) -> CorefResult:
    """Table 2 over ``(maps (K, T, T), list_of_sentences_in_chunk)`` pairs (module rules).

    ``result.table`` rows: nearest mention, nearest with same head word under both readings (none
    -> wrong; none -> the nearest mention), the best head (by All), and the mention counts; columns
    All / Pronoun / Proper / Nominal.
    """
    acc = CorefAccumulator(num_heads_total, num_heads, layout)
    for maps, sentences in chunk_pairs:
        acc.update(maps, sentences)
    return acc.result()


def check_fallback(fallback: str) -> None:
    if fallback not in FALLBACKS:
        raise ValueError(f"same_head_fallback must be one of {FALLBACKS}, not {fallback!r}")


def join_chunk(chunk: list[Sentence]) -> Sentence:
    """A chunk's sentences as one unit of joined words (what the model reads at once)."""
    return Sentence(words=[w for s in chunk for w in s.words], sent_id=f"{chunk[0].sent_id}+{len(chunk) - 1}",
                    doc_id=chunk[0].doc_id)


def has_entities(sentences: Iterable[Sentence]) -> bool:
    return any(m and "Entity" in m for s in sentences for m in (s.misc or []))


def corpus_coref(ctx: Context, corpus: Corpus, split: str, max_words: int) -> tuple[CorefResult, int, int]:
    """Table 2 on ``corpus`` ``split`` (``"a+b"`` joins splits) read as document chunks of at most
    ``max_words`` words, with ``ctx``'s model and extraction settings; returns the result, the
    number of chunks and of chunks over the model's length (skipped)."""
    acc, num_chunks, skipped = None, 0, 0
    for part in split.split("+"):
        sentences = ctx.sentences(part, corpus)
        if not has_entities(sentences):
            raise ValueError(f"{corpus.file(part)}: no Entity= coreference annotation in MISC; "
                             "use a corpus with it (analysis.corpus, default data=ud_gum)")
        chunks = list(document_chunks(sentences, max_words))
        units = [join_chunk(c) for c in chunks]
        store = ctx.unit_attention(corpus, part, units, f"document chunks of at most {max_words} words",
                                   f"docs{max_words}")
        if acc is None:
            acc = CorefAccumulator(store.num_maps, store.num_heads, layout_of(store))
        for i in store.kept:
            acc.update(store.maps(i), chunks[i])
        num_chunks, skipped = num_chunks + len(chunks), skipped + len(store.skipped)
    return acc.result(), num_chunks, skipped


@dataclass(kw_only=True)
class CorefJob:
    """§5, Table 2: antecedent selection accuracy of every head, over document chunks."""

    # tiny-train holds the one coreference chain of the tiny data ("the dog" ... "it")
    in_report: ClassVar[bool] = True
    tiny_overrides: ClassVar[list[str]] = ["split=train", "data@analysis.corpus=tiny"]
    max_words: int
    corpus: Corpus | None  # conf/analysis/coref_heads.yaml binds GUM; null: the run's data
    # the same-head-word baseline when no earlier mention shares the head word: "none" counts it
    # wrong, "nearest" falls back to the nearest mention; both are always computed and shown
    same_head_fallback: str

    def __post_init__(self):
        check_fallback(self.same_head_fallback)

    def run(self, ctx: Context) -> Section:
        corpus = self.corpus or ctx.corpus
        res, num_chunks, skipped = corpus_coref(ctx, corpus, ctx.split, self.max_words)
        rows = [{k: (round(100 * v, 1) if isinstance(v, float) else v) for k, v in r.items()} for r in res.table]
        rows += [{"model": f"paper: {name}", **dict(zip(("All", "Pronoun", "Proper", "Nominal"), vals))}
                 for name, vals in paper.TABLE2.items()]
        text = ctx.writer.table("coref_heads", rows, digits=1)
        summary = {"chunks": num_chunks, "chunks_skipped": skipped, "mentions_scored": int(res.counts[0]),
                   "best_head": res.best_head, "best_accuracy": float(res.head_accuracy[0].max()),
                   "nearest_accuracy": float(res.nearest[0]), "same_head_fallback": self.same_head_fallback,
                   "same_head_accuracy": float(res.same_head_under(self.same_head_fallback)[0])}
        for fallback in FALLBACKS:
            reading = res.same_head_under(fallback)
            summary[f"same_head_accuracy_{fallback}"] = float(reading[0])
            summary.update({f"same_head_accuracy_{fallback}_{t}": float(a) for t, a in zip(TYPES[1:], reading[1:])})
        md = (f"Documents cut into chunks of whole sentences, at most {self.max_words} "
              f"words ({num_chunks} chunks, {skipped} over the model's length skipped). A mention's head "
              "word is the first word of its span whose gold head lies outside the span. The same-head-word "
              "baseline is shown under both readings of the paper (no earlier mention with the head word: wrong, "
              f"or the nearest mention); `same_head_fallback={self.same_head_fallback}` is the one the summary "
              f"reports. Accuracy in %; the paper's rows are CoNLL-2012.\n\n{text}")
        return Section("Coreference heads (§5, Table 2)", md, [], summary, corpus=corpus)
