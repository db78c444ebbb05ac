"""Where the words sit in a word-level map, for any special-token layout.

A word-level map of a sentence of ``n`` words is ``(K, T, T)`` with ``T = n + start + end``
(row = attention FROM, column = attention TO). BERT and MPNet wrap the words in a start and an
end token ([CLS]/[SEP], <s>/</s>); Gemma prepends <bos> only; SmolLM2 adds nothing. Every
consumer finds the words and the special tokens through this one type instead of assuming
``0`` and ``n + 1``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Layout:
    """``start``: a special token before the words; ``end``: one after them."""

    start: bool = True
    end: bool = True

    @property
    def num_specials(self) -> int:
        return int(self.start) + int(self.end)

    def num_tokens(self, n: int) -> int:
        """T for a sentence of ``n`` words."""
        return n + self.num_specials

    def num_words(self, T: int) -> int:
        """n for maps over ``T`` tokens."""
        n = T - self.num_specials
        if n < 0:
            raise ValueError(f"maps over {T} tokens cannot hold the {self.describe()} layout")
        return n

    @property
    def first_word(self) -> int:
        """Token index of word 1 (0-based word 0)."""
        return int(self.start)

    def words(self, n: int) -> slice:
        """Token indices of the words, as a slice."""
        return slice(self.first_word, self.first_word + n)

    def word_token(self, w: int) -> int:
        """Token index of 0-based word ``w``."""
        return self.first_word + w

    @property
    def start_index(self) -> int | None:
        return 0 if self.start else None

    def end_index(self, n: int) -> int | None:
        return self.first_word + n if self.end else None

    def describe(self) -> str:
        return {(True, True): "start+end", (True, False): "start only",
                (False, True): "end only", (False, False): "no specials"}[(self.start, self.end)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> Layout:
        # caches written before layouts existed all had [CLS]/<s> ... [SEP]/</s>
        return cls(**d) if d else cls()


BOTH = Layout(True, True)
