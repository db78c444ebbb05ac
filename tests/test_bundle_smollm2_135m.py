import pytest

from .bundled_models import materialized_model_matches_gguf


@pytest.mark.slow
def test_materialized_smollm2_135m_matches_gguf(tmp_path, monkeypatch):
    materialized_model_matches_gguf("smollm2_135m", False, "LlamaModel", tmp_path, monkeypatch)
