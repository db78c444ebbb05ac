"""Analyse attention heads: ``python analyze.py analysis=surface`` (see conf/analyze.yaml)."""

import hydra
from omegaconf import DictConfig

import probing  # noqa: F401  (registers the config resolvers)
from probing.analysis_run import analyze


@hydra.main(version_base="1.3", config_path="conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    analyze(cfg)


if __name__ == "__main__":
    main()
