"""probing: attention analysis and probing classifiers after Clark et al. (2019)."""

from pathlib import Path

from omegaconf import OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent

# lets configs name files shipped inside the package (the tiny treebank) wherever it is installed
OmegaConf.register_new_resolver("package_dir", lambda: str(PACKAGE_DIR), replace=True)
