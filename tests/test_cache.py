"""The attention cache: round trip, key invalidation, resume, and refusing damaged files."""

import json

import numpy as np
import pytest

from probing.attention.cache import AttentionCache, CacheError, CacheWriter


def maps(T, K=2, seed=0):
    return np.random.default_rng(seed).random((K, T, T)).astype(np.float32)


def test_round_trip_stores_float16_in_source_order(tmp_path):
    w = CacheWriter(tmp_path, {"k": 1}, num_sentences=3, num_layers=1, num_heads=2)
    a, c = maps(3, seed=1), maps(5, seed=2)
    w.add(2, c)  # extraction order is by length, not corpus order
    w.add(0, a)
    cache = w.finish(skipped={1: "longer than 4 pieces"})
    assert cache.kept.tolist() == [0, 2] and cache.skipped == {1: "longer than 4 pieces"}
    np.testing.assert_allclose(cache.maps(0), a, atol=1e-3)
    np.testing.assert_allclose(cache.maps(2), c, atol=1e-3)
    assert cache.maps(2).dtype == np.float16
    # exactly 2 bytes per weight: no padding, no header in the data file
    assert (tmp_path / "attention.f16").stat().st_size == 2 * (a.size + c.size)
    with pytest.raises(KeyError, match="longer than 4 pieces"):
        cache.maps(1)


def test_an_interrupted_cache_is_never_read_and_resumes(tmp_path):
    key = {"model": "m"}
    w = CacheWriter(tmp_path, key, num_sentences=3, num_layers=1, num_heads=2)
    w.add(0, maps(3))
    w.flush()
    w.add(1, maps(4))  # added but never flushed: lost in the "crash"
    w._data.flush()
    with pytest.raises(CacheError, match="incomplete"):
        AttentionCache(tmp_path)
    again = CacheWriter(tmp_path, key, num_sentences=3, num_layers=1, num_heads=2)
    assert again.done(0) and not again.done(1) and again.num_done == 1
    again.add(1, maps(4))
    again.add(2, maps(2))
    cache = again.finish(skipped={})
    np.testing.assert_allclose(cache.maps(1), maps(4), atol=1e-3)
    assert (tmp_path / "attention.f16").stat().st_size == 2 * (2 * 9 + 2 * 16 + 2 * 4)


def test_a_partial_cache_under_another_key_starts_over(tmp_path):
    w = CacheWriter(tmp_path, {"mode": "mean"}, 2, 1, 2)
    w.add(0, maps(3))
    w.flush()
    other = CacheWriter(tmp_path, {"mode": "first"}, 2, 1, 2)
    assert other.num_done == 0


def test_truncated_or_tampered_data_is_refused(tmp_path):
    w = CacheWriter(tmp_path, {}, 1, 1, 2)
    w.add(0, maps(3))
    w.finish(skipped={})
    data = tmp_path / "attention.f16"
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0xFF
    data.write_bytes(bytes(raw))
    AttentionCache(tmp_path)  # same size: only the checksum can tell
    with pytest.raises(CacheError, match="checksum"):
        AttentionCache(tmp_path, verify=True)
    data.write_bytes(bytes(raw[:-2]))
    with pytest.raises(CacheError, match="truncated"):
        AttentionCache(tmp_path)


def test_wrong_shape_is_refused(tmp_path):
    w = CacheWriter(tmp_path, {}, 1, 1, 2)
    with pytest.raises(ValueError, match="expected \\(2, T, T\\)"):
        w.add(0, maps(3, K=3))


def test_meta_records_the_key(tmp_path):
    w = CacheWriter(tmp_path, {"model": {"name": "x"}}, 1, 1, 2)
    w.add(0, maps(2))
    w.finish(skipped={})
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["key"] == {"model": {"name": "x"}} and meta["status"] == "complete"


def test_auto_verification_hashes_once_and_again_after_any_change(tmp_path, monkeypatch):
    from probing.attention import cache as cache_mod

    w = CacheWriter(tmp_path, {}, 1, 1, 2)
    w.add(0, maps(3))
    w.finish(skipped={})
    hashed = []
    real = cache_mod._file_digest
    monkeypatch.setattr(cache_mod, "_file_digest", lambda p: (hashed.append(p), real(p))[1])
    AttentionCache(tmp_path, verify="auto")
    assert hashed == []  # the writer hashed it and stamped it
    data = tmp_path / "attention.f16"
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0xFF
    data.write_bytes(bytes(raw))  # same size, new mtime
    with pytest.raises(CacheError, match="checksum mismatch"):
        AttentionCache(tmp_path, verify="auto")
    assert len(hashed) == 1
