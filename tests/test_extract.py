"""Extraction with the tiny random BERT on the tiny treebank, through the composed configs."""

import numpy as np
import pytest
import torch
from hydra.utils import instantiate

from probing.attention import extract as ex
from probing.attention.cache import AttentionCache
from probing.attention.wordlevel import merge_pieces


@pytest.fixture
def parts(compose_tiny):
    cfg = compose_tiny("extract", "split=train")
    return cfg, instantiate(cfg.model), instantiate(cfg.data), instantiate(cfg.extract)


def test_run_caches_every_sentence_with_rows_summing_to_one(parts):
    cfg, *_ = parts
    result = ex.run(cfg)
    assert result == {**result, "sentences": 8, "stored": 8, "skipped": 0, "num_layers": 2, "num_heads": 4}
    cache = AttentionCache(result["cache_dir"], verify=True)
    sentences, _ = instantiate(cfg.data).read("train")
    for maps, sent in cache.pairs(sentences):
        assert maps.shape == (8, len(sent) + 2, len(sent) + 2)
        np.testing.assert_allclose(maps.astype(np.float32).sum(-1), 1.0, atol=5e-3)


def test_batched_extraction_equals_one_sentence_at_a_time(parts):
    _, encoder, corpus, settings = parts
    cache, sentences = ex.get_attention(encoder, corpus, "train", settings, parts[0].paths.attention_cache)
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
    first, _ = ex.get_attention(encoder, corpus, "train", settings, root)
    monkeypatch.setattr(ex, "build_cache", lambda *a, **k: pytest.fail("re-extracted a cached split"))
    again, _ = ex.get_attention(encoder, corpus, "train", settings, root)
    assert again.dir == first.dir
    monkeypatch.undo()
    settings.mode = "first"
    other, _ = ex.get_attention(encoder, corpus, "train", settings, root)
    assert other.dir != first.dir and other.key["mode"] == "first"


def test_overlong_sentences_are_skipped_and_counted_or_refused(parts):
    cfg, encoder, corpus, settings = parts
    settings.max_length = 10
    cache, sentences = ex.get_attention(encoder, corpus, "train", settings, cfg.paths.attention_cache)
    too_long = {i for i, s in enumerate(sentences) if len(s) + 2 > 10}
    assert too_long and set(cache.skipped) >= too_long
    assert all("longer than 10 pieces" in why for why in cache.skipped.values())
    assert len(cache) + len(cache.skipped) == len(sentences)
    settings.on_overlong = "error"
    settings.max_length = 9
    with pytest.raises(ex.ExtractionError, match=r"tiny-train\.conllu: sentence tiny-train-\d+ has \d+ word pieces"):
        ex.get_attention(encoder, corpus, "train", settings, cfg.paths.attention_cache)


def test_interrupted_extraction_resumes_without_redoing_stored_sentences(parts, monkeypatch):
    cfg, encoder, corpus, settings = parts
    settings.batch_size, settings.flush_every = 2, 1
    real = ex.CacheWriter.add
    calls = []

    def crash_after_four(self, i, m):
        if len(calls) == 4:
            raise KeyboardInterrupt
        calls.append(i)
        real(self, i, m)

    monkeypatch.setattr(ex.CacheWriter, "add", crash_after_four)
    with pytest.raises(KeyboardInterrupt):
        ex.get_attention(encoder, corpus, "train", settings, cfg.paths.attention_cache)
    monkeypatch.undo()
    resumed = []
    monkeypatch.setattr(ex.CacheWriter, "add", lambda self, i, m: (resumed.append(i), real(self, i, m)))
    cache, _ = ex.get_attention(encoder, corpus, "train", settings, cfg.paths.attention_cache)
    assert sorted(resumed) == sorted(set(range(8)) - set(calls)) and len(cache) == 8
    monkeypatch.undo()
    settings.flush_every = 20
    clean_root = cfg.paths.attention_cache + "-clean"
    clean, _ = ex.get_attention(encoder, corpus, "train", settings, clean_root)
    for i in range(8):
        np.testing.assert_array_equal(cache.maps(i), clean.maps(i))


def test_a_tampered_cache_is_rebuilt_never_read(parts):
    cfg, encoder, corpus, settings = parts
    root = cfg.paths.attention_cache
    first, _ = ex.get_attention(encoder, corpus, "train", settings, root)
    clean = first.maps(0).copy()
    data = first.dir / "attention.f16"
    raw = bytearray(data.read_bytes())
    raw[:64] = bytes(64)  # zeros where the first map's weights were: same size
    data.write_bytes(bytes(raw))
    again, _ = ex.get_attention(encoder, corpus, "train", settings, root)
    np.testing.assert_array_equal(again.maps(0), clean)
    assert again.meta["checksum"] == first.meta["checksum"]


def test_splits_joined_with_plus_read_as_one_store(parts):
    cfg, encoder, corpus, settings = parts
    root = cfg.paths.attention_cache
    both, sentences = ex.get_attention(encoder, corpus, "train+dev", settings, root)
    train, train_sents = ex.get_attention(encoder, corpus, "train", settings, root)
    dev, dev_sents = ex.get_attention(encoder, corpus, "dev", settings, root)
    assert len(both) == len(train) + len(dev) == len(sentences) == len(train_sents) + len(dev_sents)
    np.testing.assert_array_equal(both.maps(len(train_sents) + 1), dev.maps(1))
    np.testing.assert_array_equal(both.maps(2), train.maps(2))
    for maps, sent in both.pairs(sentences):
        assert maps.shape[-1] == len(sent) + 2


def test_parallel_jobs_missing_the_same_cache_build_it_once(parts, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    cfg, encoder, corpus, settings = parts
    real, builds = ex.build_cache, []
    monkeypatch.setattr(ex, "build_cache", lambda *a, **k: (builds.append(1), real(*a, **k))[1])
    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(lambda _: ex.get_attention(encoder, corpus, "train", settings, cfg.paths.attention_cache)[0],
                            range(2)))
    assert builds == [1]
    AttentionCache(got[0].dir, verify=True)
    np.testing.assert_array_equal(got[0].maps(3), got[1].maps(3))
