import pytest

from .bundled_models import materialized_model_matches_gguf


@pytest.mark.slow
def test_materialized_gemma3_270m_matches_gguf(tmp_path, monkeypatch):
    materialized_model_matches_gguf("gemma3_270m", True, "Gemma3TextModel", tmp_path, monkeypatch)
