"""A byte-level BPE tokenizer built in code, for tiny random causal LMs in tests (no download).

It behaves like GPT-2's / SmolLM2's tokenizer where that matters to us: the ByteLevel
pre-tokenizer keeps the leading space with the following word (``" food"`` -> ``Ġ f o o d``),
offsets into the running text are available, and a template may prepend ``<bos>`` (as Gemma's
does). It has no merges, so every byte is its own piece and every word of two or more characters
is split, which exercises the piece-to-word merging. Ids are fixed: the four special tokens take
ids 0-3 and the 256 byte symbols follow in byte order, 260 in all.
"""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = range(4)


def _byte_symbols() -> list[str]:
    """The 256 printable symbols ByteLevel maps the bytes 0..255 to, in byte order (GPT-2's table)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    symbol, shift = {}, 0
    for b in range(256):
        if b in printable:
            symbol[b] = chr(b)
        else:  # control bytes, space, etc. move to 256 + k, so " " becomes "Ġ"
            symbol[b] = chr(256 + shift)
            shift += 1
    return [symbol[b] for b in range(256)]


def byte_tokenizer(add_bos: bool) -> PreTrainedTokenizerFast:
    """Byte-level BPE without merges; ``<bos>`` prepended when ``add_bos``, no end token."""
    symbols = _byte_symbols()
    assert set(symbols) == set(pre_tokenizers.ByteLevel.alphabet())
    vocab = {tok: i for i, tok in enumerate(SPECIALS)}
    vocab.update({s: len(SPECIALS) + b for b, s in enumerate(symbols)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(list(SPECIALS))
    single = "<bos> $A" if add_bos else "$A"
    tok.post_processor = processors.TemplateProcessing(
        single=single, pair=f"{single} $B", special_tokens=[("<bos>", BOS_ID)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        # transformers rebuilds the same template from these flags; keeps .add_bos_token truthful
        add_bos_token=add_bos,
        add_eos_token=False,
    )
