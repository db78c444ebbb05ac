"""Extract word-level attention into the cache: ``python extract.py split=train`` (see conf/extract.yaml)."""

import hydra
from omegaconf import DictConfig

import probing  # noqa: F401  (registers the config resolvers)


@hydra.main(version_base="1.3", config_path="conf", config_name="extract")
def main(cfg: DictConfig) -> None:
    # imported here, not above: a multirun's launcher (hydra/launcher=slurm) only composes and submits,
    # and torch would cost it seconds per sweep
    from probing.attention.store import run

    run(cfg)


if __name__ == "__main__":
    main()
