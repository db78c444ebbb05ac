"""probing: attention analysis and probing classifiers after Clark et al. (2019)."""

import os
from pathlib import Path

from omegaconf import OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent
# the Hydra configs: beside the package in a checkout (the project is installed editable)
CONF_DIR = PACKAGE_DIR.parent / "conf"

# lets configs name files shipped inside the package (the tiny treebank) wherever it is installed
OmegaConf.register_new_resolver("package_dir", lambda: str(PACKAGE_DIR), replace=True)
# the directory a command was started in. Hydra's ${hydra:runtime.cwd} is unset while a multirun
# resolves its sweep directory, so `train.py -m ...` failed with the default paths
OmegaConf.register_new_resolver("cwd", os.getcwd, replace=True)
