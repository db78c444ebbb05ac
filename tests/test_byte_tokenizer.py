import pytest

from probing.attention.byte_tokenizer import BOS_ID, EOS_ID, PAD_ID, UNK_ID, byte_tokenizer
from probing.attention.layout import Layout
from probing.attention.pieces import cut, piece_layout
from probing.data.sentence import Sentence


@pytest.mark.parametrize("add_bos", [True, False])
def test_the_food_pieces_map_to_words(add_bos):
    tok = byte_tokenizer(add_bos)
    p = cut(tok, [Sentence(words=["The", "food"], sent_id="s")])
    assert p.layout == Layout(start=add_bos, end=False)
    pieces = tok.convert_ids_to_tokens(p.input_ids[0])
    body = ["T", "h", "e", "Ġ", "f", "o", "o", "d"]
    assert pieces == (["<bos>"] if add_bos else []) + body
    first = int(add_bos)
    # the space piece "Ġ" goes with the word after it, as "Ġfood" would in a merged BPE
    assert p.token_of_piece[0] == ([0] if add_bos else []) + [first] * 3 + [first + 1] * 5


@pytest.mark.parametrize("add_bos", [True, False])
def test_specials_vocab_and_flags(add_bos):
    tok = byte_tokenizer(add_bos)
    assert len(tok) == 260
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (
        PAD_ID, BOS_ID, EOS_ID, UNK_ID)
    assert tok.add_bos_token is add_bos
    assert piece_layout(tok) == Layout(start=add_bos, end=False)
    enc = tok(["a b", "a"], padding=True, return_special_tokens_mask=True)
    assert enc["input_ids"][1][-1] == PAD_ID  # pads on the right with <pad>
    assert enc["special_tokens_mask"][0][0] == int(add_bos)


def test_deterministic_and_round_trip_bytes():
    text = "Héllo, wörld — 3.5 ½!"
    a, b = byte_tokenizer(True), byte_tokenizer(True)
    ids = a(text)["input_ids"]
    assert ids == b(text)["input_ids"]
    assert len(ids) == 1 + len(text.encode("utf-8"))  # one piece per byte
    assert a.decode(ids, skip_special_tokens=True) == text


def test_multibyte_words_map_to_their_word():
    tok = byte_tokenizer(False)
    p = cut(tok, [Sentence(words=["héllo", "wörld", "!"], sent_id="s")])
    # héllo = 6 bytes; Ġwörld = 1 + 6; Ġ! = 2
    assert p.token_of_piece[0] == [0] * 6 + [1] * 7 + [2] * 2
