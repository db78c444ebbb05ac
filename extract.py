"""Extract word-level attention into the cache: ``python extract.py split=train`` (see conf/extract.yaml)."""

import hydra
from omegaconf import DictConfig

from probing import runner


@hydra.main(version_base="1.3", config_path="conf", config_name="extract")
def main(cfg: DictConfig) -> None:
    runner.main(cfg)


if __name__ == "__main__":
    main()
