"""Analyse attention heads: ``python analyze.py analysis=surface`` (see conf/analyze.yaml)."""

import hydra
from omegaconf import DictConfig

from probing import runner


@hydra.main(version_base="1.3", config_path="conf", config_name="analyze")
def main(cfg: DictConfig) -> None:
    runner.main(cfg)


if __name__ == "__main__":
    main()
