"""Extraction with the tiny random BERT on the tiny treebank, through the composed configs."""

import dataclasses

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from probing.attention import build as bd
from probing.attention import extract as ex
from probing.attention import store as st
from probing.attention.cache import AttentionCache
from probing.attention.wordlevel import merge_pieces

from .conftest import extract, model_node


@pytest.fixture
def parts(compose_tiny):
    cfg = compose_tiny("extract", "split=train")
    return cfg, instantiate(cfg.model), instantiate(cfg.data), instantiate(cfg.extract)


def test_run_caches_every_sentence_with_rows_summing_to_one(parts):
    cfg, *_ = parts
    result = extract(cfg)
    assert result == {**result, "sentences": 8, "stored": 8, "skipped": 0, "num_layers": 2, "num_heads": 4}
    cache = AttentionCache(result["cache_dir"], verify=True)
    sentences, _ = instantiate(cfg.data).read("train")
    for maps, sent in cache.pairs(sentences):
        assert maps.shape == (8, len(sent) + 2, len(sent) + 2)
        np.testing.assert_allclose(maps.astype(np.float32).sum(-1), 1.0, atol=5e-3)


def test_batched_extraction_equals_one_sentence_at_a_time(parts):
    _, encoder, corpus, settings = parts
    cache, sentences = st.open_split(encoder, corpus, "train", settings, parts[0].paths.attention_cache)
    tokenizer, model = encoder.load()
    i = next(i for i, s in enumerate(sentences) if "unbelievably" in s.words)
    enc = tokenizer(sentences[i].words, is_split_into_words=True)
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([enc["input_ids"]]), output_attentions=True)
    attn = torch.cat(out.attentions, 1)[0]
    expected = merge_pieces(attn, enc.word_ids(), len(sentences[i])).numpy()
    np.testing.assert_allclose(cache.maps(i).astype(np.float32), expected, atol=2e-3)


def test_second_call_is_a_cache_hit_and_a_changed_key_is_a_new_cache(parts, monkeypatch):
    cfg, encoder, corpus, settings = parts
    root = cfg.paths.attention_cache
    first, _ = st.open_split(encoder, corpus, "train", settings, root)
    monkeypatch.setattr(bd, "build", lambda *a, **k: pytest.fail("re-extracted a cached split"))
    again, _ = st.open_split(encoder, corpus, "train", settings, root)
    assert again.dir == first.dir
    monkeypatch.undo()
    settings.mode = "first"
    other, _ = st.open_split(encoder, corpus, "train", settings, root)
    assert other.dir != first.dir and other.key["mode"] == "first"


def test_overlong_sentences_are_skipped_and_counted_or_refused(parts):
    cfg, encoder, corpus, settings = parts
    settings.max_length = 10
    cache, sentences = st.open_split(encoder, corpus, "train", settings, cfg.paths.attention_cache)
    too_long = {i for i, s in enumerate(sentences) if len(s) + 2 > 10}
    assert too_long and set(cache.skipped) >= too_long
    assert all("longer than 10 pieces" in why for why in cache.skipped.values())
    assert len(cache) + len(cache.skipped) == len(sentences)
    settings.on_overlong = "error"
    settings.max_length = 9
    with pytest.raises(ex.ExtractionError, match=r"tiny-train\.conllu: sentence tiny-train-\d+ has \d+ word pieces"):
        st.open_split(encoder, corpus, "train", settings, cfg.paths.attention_cache)


def test_interrupted_extraction_resumes_without_redoing_stored_sentences(parts, monkeypatch):
    cfg, encoder, corpus, settings = parts
    settings.batch_size, settings.flush_every = 2, 1
    real = bd.CacheWriter.add
    calls = []

    def crash_after_four(self, i, m):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(i)
        real(self, i, m)

    monkeypatch.setattr(bd.CacheWriter, "add", crash_after_four)
    with pytest.raises(KeyboardInterrupt):
        st.open_split(encoder, corpus, "train", settings, cfg.paths.attention_cache)
    monkeypatch.undo()
    resumed = []
    monkeypatch.setattr(bd.CacheWriter, "add", lambda self, i, m: (resumed.append(i), real(self, i, m)))
    cache, _ = st.open_split(encoder, corpus, "train", settings, cfg.paths.attention_cache)
    assert sorted(resumed) == sorted(set(range(8)) - set(calls)) and len(cache) == 8
    monkeypatch.undo()
    settings.flush_every = 20
    clean_root = cfg.paths.attention_cache + "-clean"
    clean, _ = st.open_split(encoder, corpus, "train", settings, clean_root)
    for i in range(8):
        np.testing.assert_array_equal(cache.maps(i), clean.maps(i))


def test_a_tampered_cache_is_rebuilt_never_read(parts):
    cfg, encoder, corpus, settings = parts
    root = cfg.paths.attention_cache
    first, _ = st.open_split(encoder, corpus, "train", settings, root)
    clean = first.maps(0).copy()
    data = first.dir / "attention.f16"
    raw = bytearray(data.read_bytes())
    raw[:64] = bytes(64)  # zeros where the first map's weights were: same size
    data.write_bytes(bytes(raw))
    again, _ = st.open_split(encoder, corpus, "train", settings, root)
    np.testing.assert_array_equal(again.maps(0), clean)
    assert again.meta["checksum"] == first.meta["checksum"]


def test_splits_joined_with_plus_read_as_one_store(parts):
    cfg, encoder, corpus, settings = parts
    root = cfg.paths.attention_cache
    both, sentences = st.open_split(encoder, corpus, "train+dev", settings, root)
    train, train_sents = st.open_split(encoder, corpus, "train", settings, root)
    dev, dev_sents = st.open_split(encoder, corpus, "dev", settings, root)
    assert len(both) == len(train) + len(dev) == len(sentences) == len(train_sents) + len(dev_sents)
    np.testing.assert_array_equal(both.maps(len(train_sents) + 1), dev.maps(1))
    np.testing.assert_array_equal(both.maps(2), train.maps(2))
    for maps, sent in both.pairs(sentences):
        assert maps.shape[-1] == len(sent) + 2


def test_parallel_jobs_missing_the_same_cache_build_it_once(parts, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    cfg, encoder, corpus, settings = parts
    real, builds = bd.build, []
    monkeypatch.setattr(bd, "build", lambda *a, **k: (builds.append(1), real(*a, **k))[1])
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda _: st.open_split(encoder, corpus, "train", settings, cfg.paths.attention_cache)[0],
                            range(2)))
    assert builds == [1]
    AttentionCache(got[0].dir, verify=True)
    np.testing.assert_array_equal(got[0].maps(3), got[1].maps(3))


@pytest.mark.parametrize("model, layout", [("tiny_llama", (False, False)), ("tiny_gemma3", (True, False))])
def test_causal_models_store_lower_triangular_maps_in_their_own_layout(model, layout, compose_tiny):
    cfg = compose_tiny("extract", f"model={model}", "split=dev")
    store, sentences = st.open_split(instantiate(cfg.model), instantiate(cfg.data), "dev", instantiate(cfg.extract),
                                     cfg.paths.attention_cache)
    assert (store.layout.start, store.layout.end) == layout
    for maps, sent in store.pairs(sentences):
        m = maps.astype(np.float32)
        assert m.shape[-1] == len(sent) + sum(layout)
        # a word attends only to itself and earlier words (and the start token, before them all)
        assert np.triu(m, 1).max() == 0
        np.testing.assert_allclose(m.sum(-1), 1.0, atol=5e-3)


def test_the_bos_choice_is_part_of_the_cache_key(compose_tiny):
    got = {}
    for add_bos in ("true", "false"):
        cfg = compose_tiny("extract", "model=tiny_gemma3", f"model.add_bos={add_bos}", "split=dev")
        store, _ = st.open_split(instantiate(cfg.model), instantiate(cfg.data), "dev", instantiate(cfg.extract),
                                 cfg.paths.attention_cache)
        got[add_bos] = store
    assert got["true"].dir != got["false"].dir
    assert got["true"].key["model"]["add_bos"] is True and got["false"].key["model"]["add_bos"] is False
    assert got["true"].layout.start and not got["false"].layout.start


def test_norm_weighted_maps_get_their_own_cache_and_rows_renormalised_or_not(parts):
    cfg, encoder, corpus, settings = parts
    root = cfg.paths.attention_cache
    attention, sentences = st.open_split(encoder, corpus, "dev", settings, root)
    settings.quantity = "norm"
    norm, _ = st.open_split(encoder, corpus, "dev", settings, root)
    settings.renormalize = False
    raw, _ = st.open_split(encoder, corpus, "dev", settings, root)
    assert len({attention.dir, norm.dir, raw.dir}) == 3 and "quantity" not in attention.key
    assert norm.key["quantity"] == "norm" and norm.key["renormalize"] is True
    np.testing.assert_allclose(norm.maps(0).astype(np.float32).sum(-1), 1.0, atol=5e-3)
    # raw norms: each row is the renormalised row times the piece rows' norm totals, so where the
    # renormalised row is zero the raw one is too, and raw rows do not sum to one
    assert not np.allclose(raw.maps(0).astype(np.float32).sum(-1), 1.0, atol=0.05)
    assert ((norm.maps(0) == 0) == (raw.maps(0) == 0)).all()


def test_model_hf_reads_any_local_checkpoint_directory(compose_tiny, tmp_path):
    from probing.attention.encoders import TinyRandom

    for arch, family in (("bert", "encoder"), ("llama", "causal_lm")):
        tiny = model_node("tiny_random" if arch == "bert" else "tiny_llama")
        tokenizer, model = TinyRandom(**{**tiny, "add_bos": False}).load()
        folder = tmp_path / f"ckpt-{arch}"
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        cfg = compose_tiny("extract", "model=hf", f"model.path={folder}", "split=dev")
        encoder = instantiate(cfg.model)
        assert encoder.family == family and len(encoder.identity()["weights"]) == 64
        store, sentences = st.open_split(encoder, instantiate(cfg.data), "dev", instantiate(cfg.extract),
                                         cfg.paths.attention_cache)
        assert len(store) == len(sentences) and store.num_layers == 2
        with torch.inference_mode():
            ids = torch.tensor([tokenizer(" ".join(sentences[0].words))["input_ids"]])
            direct = torch.cat(model(input_ids=ids, output_attentions=True).attentions, 1)[0]
        # the first sentence's map from the directory equals the saved model's own, merged
        tokens = ex.cut(tokenizer, sentences[:1]).token_of_piece[0]
        F, S = ex.merge_matrices([tokens], direct.shape[-1], max(tokens) + 1)
        expected = ex.merge_batch(direct[None].float(), F, S)[0].numpy()
        np.testing.assert_allclose(store.maps(0).astype(np.float32), expected, atol=2e-3)


def test_model_hf_names_a_missing_directory_or_unreachable_hub(compose_tiny, tmp_path):
    from probing.attention.encoders import EncoderUnavailableError

    cfg = compose_tiny("extract", "model=hf", f"model.path={tmp_path / 'nowhere'}", "model.family=encoder")
    with pytest.raises(EncoderUnavailableError, match="nowhere is not a checkpoint directory"):
        instantiate(cfg.model).load()


def test_data_conllu_reads_a_treebank_of_your_own(compose_tiny, tmp_path):
    own = tmp_path / "mine.conllu"
    own.write_text("# sent_id = m1\n1\tDogs\tdog\tNOUN\t_\t_\t2\tnsubj\t_\t_\n2\tbark\tbark\tVERB\t_\t_\t0\troot\t_\t_\n\n")
    cfg = compose_tiny("extract", "data=conllu", f"data.path={own}", "split=dev")
    corpus = instantiate(cfg.data)
    store, sentences = st.open_split(instantiate(cfg.model), corpus, "dev", instantiate(cfg.extract),
                                     cfg.paths.attention_cache)
    assert [s.words for s in sentences] == [["Dogs", "bark"]] and len(store) == 1
    assert store.key["data"]["file"] == "mine.conllu" and corpus.file("train") == own


def test_data_conllu_takes_one_file_per_split(compose_tiny, tmp_path):
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.conllu").write_text(f"1\t{split}\t_\tNOUN\t_\t_\t0\troot\t_\t_\n\n")
    cfg = compose_tiny("train", "data=conllu", f"data.root={tmp_path}", "data.files.train=train.conllu",
                       "data.files.dev=dev.conllu", "data.files.test=test.conllu")
    corpus = instantiate(cfg.data)
    assert {s: corpus.read(s)[0][0].words for s in ("train", "dev", "test")} == {
        "train": ["train"], "dev": ["dev"], "test": ["test"]}
    with pytest.raises(Exception, match=r"give one file for every split \(data.path=FILE\) or one per split"):
        instantiate(compose_tiny("train", "data=conllu").data)


def test_bf16_precision_has_its_own_cache_key_and_stays_close_to_fp32(compose_tiny, monkeypatch):
    cfg = compose_tiny("extract", "split=dev")
    encoder, corpus, fp32 = instantiate(cfg.model), instantiate(cfg.data), instantiate(cfg.extract)
    assert fp32.precision == "fp32" and "precision" not in fp32.key()  # fp32 keys are those of before
    bf16 = dataclasses.replace(fp32, precision="bf16")
    assert bf16.key()["precision"] == "bf16"
    # auto: bf16 where the hardware runs bf16 matmuls natively, else fp32 (and then fp32's key)
    auto = dataclasses.replace(fp32, precision="auto")
    monkeypatch.setattr(ex, "fast_bf16", lambda device: False)
    assert auto.compute_dtype() == "fp32" and auto.key() == fp32.key()
    monkeypatch.setattr(ex, "fast_bf16", lambda device: True)
    assert auto.compute_dtype() == "bf16" and auto.key() == bf16.key()
    a, _ = st.open_split(encoder, corpus, "dev", fp32, cfg.paths.attention_cache)
    b, _ = st.open_split(encoder, corpus, "dev", bf16, cfg.paths.attention_cache)
    assert a.dir != b.dir
    for i in a.kept:
        x, y = a.maps(i).astype(np.float64), b.maps(i).astype(np.float64)
        np.testing.assert_allclose(y.sum(-1), 1.0, atol=2e-2)  # still a distribution per row
        assert 0 < np.abs(x - y).max() < 0.05  # bf16 moves the maps, a little


@pytest.mark.parametrize("flags, units", [("fpu avx512f avx512_bf16 amx_bf16 amx_tile", ["AMX", "AVX512-BF16"]),
                                          ("fpu avx512f avx512_bf16", ["AVX512-BF16"]), ("fpu avx2", [])])
def test_bf16_units_read_from_the_cpu_flags_decide_auto_and_label_the_device(tmp_path, monkeypatch, flags, units):
    from probing import provenance

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: {flags}\n\n"
                       f"processor\t: 1\nmodel name\t: Some CPU 9000\nflags\t\t: {flags}\n")
    monkeypatch.setattr(provenance, "CPUINFO", cpuinfo)
    assert provenance.cpu_info() == ("Some CPU 9000", units)
    assert ex.fast_bf16(torch.device("cpu")) is bool(units)
    if not torch.cuda.is_available():
        assert provenance.device().startswith(f"CPU (Some CPU 9000, bf16: {' and '.join(units) or 'none'}), ")
    monkeypatch.setattr(provenance, "CPUINFO", tmp_path / "absent")
    assert provenance.cpu_info() == ("", []) and not ex.fast_bf16(torch.device("cpu"))
