"""Train an attention probe: ``python train.py probe=attn_plus_glove`` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

import probing  # noqa: F401  (registers the config resolvers)


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # imported here, not above: a multirun's launcher (hydra/launcher=slurm) only composes and submits,
    # and torch and Lightning would cost it seconds per sweep
    from probing.training import train

    metrics = train(cfg)
    # a sweeper optimises what main returns
    return metrics.get(cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
