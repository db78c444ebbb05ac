"""The download path, offline: urlopen is replaced by a fake that serves fixed bytes."""

import io

import pytest

from probing.data import prepare


@pytest.fixture
def served(monkeypatch):
    files = {}
    monkeypatch.setattr(prepare.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(files[url]))
    return files


def test_records_hashes_then_refuses_a_changed_file(tmp_path, served):
    for repo, pattern in prepare.TREEBANKS.values():
        name = pattern.format(split="dev")
        served[prepare.URL.format(repo=repo, ref="r9", name=name)] = f"{name}\n".encode()
    written = prepare.prepare(tmp_path, "r9", splits=("dev",))
    assert [p.name for p in written] == ["en_ewt-ud-dev.conllu", "en_gum-ud-dev.conllu"]
    assert "ud-english-ewt/en_ewt-ud-dev.conllu" in (tmp_path / "SHA256SUMS").read_text()
    (tmp_path / "ud-english-ewt/en_ewt-ud-dev.conllu").write_text("tampered\n")
    with pytest.raises(SystemExit, match="differs from the expected"):
        prepare.prepare(tmp_path, "r9", splits=("dev",))


def test_known_release_hash_is_enforced(tmp_path, served):
    repo, pattern = prepare.TREEBANKS["ud-english-ewt"]
    served[prepare.URL.format(repo=repo, ref="15d613d8", name="en_ewt-ud-dev.conllu")] = b"not the release\n"
    with pytest.raises(SystemExit, match="sha256"):
        prepare.prepare(tmp_path, "15d613d8", splits=("dev",))
