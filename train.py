"""Train an attention probe: ``python train.py probe=attn_plus_glove`` (see conf/train.yaml)."""

import hydra
from omegaconf import DictConfig

from probing import runner


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    record = runner.main(cfg)
    # a sweeper optimises what main returns (None on DDP ranks other than 0)
    return record.metrics.get(cfg.get("optimized_metric")) if record else None


if __name__ == "__main__":
    main()
