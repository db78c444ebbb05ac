"""Cut sentences into the model's pieces and map each piece to its word.

The words are joined with single spaces into the running text the model would have seen, and
pieces are mapped to words through the tokenizer's character offsets. Tokenizing pre-split
words (``is_split_into_words``) instead makes byte-level BPE tokenizers (SmolLM2, GPT-2) drop
the leading-space marker (``food`` rather than ``Ġfood``), which is not how the model read text;
for WordPiece models (BERT, MPNet) both routes give the same pieces.

Special tokens are placed by the tokenizer's own template, except that ``add_bos`` can force a
beginning-of-sequence token on (Gemma was trained with one) or off. The resulting layout (a start
token or none, an end token or none) must be the same for every sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from probing.attention.layout import Layout
from probing.data.sentence import Sentence
from probing.errors import ProbingError


class PieceError(ProbingError, ValueError):
    pass


@dataclass
class Pieces:
    """``input_ids[b]``: one sentence's piece ids, specials included. ``token_of_piece[b][p]``:
    the word-level token of piece ``p`` under ``layout`` (word ``w`` -> ``layout.word_token(w)``).
    ``unk_words``: words that gave no piece and were fed as the unknown token instead."""

    input_ids: list[list[int]]
    token_of_piece: list[list[int]]
    layout: Layout
    unk_words: int = 0


def word_spans(words: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """The running text and each word's ``[start, end)`` character span in it."""
    spans, pos = [], 0
    for w in words:
        spans.append((pos, pos + len(w)))
        pos += len(w) + 1
    return " ".join(words), spans


def _owner_of_chars(text: str, spans: list[tuple[int, int]]) -> list[int]:
    """Word index of every character; -1 for the separating spaces."""
    owner = [-1] * len(text)
    for w, (s, e) in enumerate(spans):
        owner[s:e] = [w] * (e - s)
    return owner


def _word_of_piece(owner: list[int], text: str, s: int, e: int) -> int | None:
    """The word a piece ``[s, e)`` belongs to: the word of its first non-space character.

    A piece of whitespace only (SentencePiece's lone "▁") belongs to the word that follows it.
    """
    for c in range(s, min(e, len(owner))):
        if owner[c] >= 0 and not text[c].isspace():
            return owner[c]
    for c in range(e, len(owner)):
        if owner[c] >= 0:
            return owner[c]
    return None


def _encode(tokenizer, texts: list[str], add_bos: bool | None):
    enc = tokenizer(texts, add_special_tokens=True, return_offsets_mapping=True,
                    return_special_tokens_mask=True)
    rows = []
    bos = tokenizer.bos_token_id
    for ids, offsets, special in zip(enc["input_ids"], enc["offset_mapping"], enc["special_tokens_mask"]):
        ids, offsets, special = list(ids), list(offsets), list(special)
        has_bos = bool(ids) and special[0] and bos is not None and ids[0] == bos
        if add_bos and not has_bos:
            if bos is None:
                raise PieceError(f"add_bos=true, but the tokenizer {type(tokenizer).__name__} has no BOS token")
            ids, offsets, special = [bos] + ids, [(0, 0)] + offsets, [1] + special
        elif add_bos is False and has_bos:
            ids, offsets, special = ids[1:], offsets[1:], special[1:]
        rows.append((ids, offsets, special))
    return rows


def cut(tokenizer, sentences: list[Sentence], add_bos: bool | None = None) -> Pieces:
    """Tokenise each sentence's running text and map its pieces to words.

    A word that yields no piece (a lone control character, say) is replaced by the unknown
    token's text, so that every word keeps a row and a column; such words are counted.
    """
    texts, spans = zip(*(word_spans(s.words) for s in sentences)) if sentences else ((), ())
    rows = _encode(tokenizer, list(texts), add_bos)
    ids_out, tokens_out, layouts, unk = [], [], set(), 0
    for b, sent in enumerate(sentences):
        ids, offsets, special = rows[b]
        words = _words_of_pieces(texts[b], spans[b], offsets, special)
        missing = set(range(len(sent))) - {w for w in words if w is not None and w >= 0}
        if missing:
            if tokenizer.unk_token is None:
                raise PieceError(f"sentence {sent.sent_id}: words {sorted(missing)} give no pieces")
            patched = [tokenizer.unk_token if i in missing else w for i, w in enumerate(sent.words)]
            text, sp = word_spans(patched)
            ids, offsets, special = _encode(tokenizer, [text], add_bos)[0]
            words = _words_of_pieces(text, sp, offsets, special)
            still = set(range(len(sent))) - {w for w in words if w is not None and w >= 0}
            if still:
                raise PieceError(f"sentence {sent.sent_id}: words {sorted(still)} give no pieces")
            unk += len(missing)
        layout, token_of_piece = _place_specials(words, len(sent), sent.sent_id)
        layouts.add(layout)
        ids_out.append(ids)
        tokens_out.append(token_of_piece)
    if len(layouts) > 1:
        raise PieceError(f"the tokenizer placed special tokens differently across sentences: {layouts}")
    layout = layouts.pop() if layouts else Layout()
    return Pieces(ids_out, tokens_out, layout, unk)


def _words_of_pieces(text, spans, offsets, special) -> list[int | None]:
    """Word index per piece, ``None`` for special tokens."""
    owner = _owner_of_chars(text, spans)
    out = []
    for (s, e), sp in zip(offsets, special):
        if sp:
            out.append(None)
        else:
            w = _word_of_piece(owner, text, s, e)
            out.append(-1 if w is None else w)
    return out


def _place_specials(words: list[int | None], n: int, sent_id: str) -> tuple[Layout, list[int]]:
    """Decide the layout from where the specials sit, and map pieces to word-level tokens."""
    real = [p for p, w in enumerate(words) if w is not None]
    if not real:
        raise PieceError(f"sentence {sent_id}: no word pieces")
    first, last = real[0], real[-1]
    specials = [p for p, w in enumerate(words) if w is None]
    inside = [p for p in specials if first < p < last]
    if inside:
        raise PieceError(f"sentence {sent_id}: special token inside the sentence at piece {inside[0]}")
    start = any(p < first for p in specials)
    end = any(p > last for p in specials)
    if sum(p < first for p in specials) > 1 or sum(p > last for p in specials) > 1:
        raise PieceError(f"sentence {sent_id}: more than one special token at an end of the sentence")
    layout = Layout(start=start, end=end)
    out = []
    for p, w in enumerate(words):
        if w is None:
            out.append(0 if p < first else layout.end_index(n))
        elif w < 0:
            raise PieceError(f"sentence {sent_id}: a piece maps to no word")
        else:
            out.append(layout.word_token(w))
    return layout, out


def piece_layout(tokenizer, add_bos: bool | None = None) -> Layout:
    """The layout this tokenizer (with ``add_bos``) gives a two-word sentence."""
    return cut(tokenizer, [Sentence(words=["a", "b"], sent_id="layout-probe")], add_bos).layout
