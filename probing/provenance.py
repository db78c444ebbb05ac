"""Where a committed number came from: the command, date, device, git commit and package versions.

Every results file (``probing.results``, the benchmarks) opens with :func:`header`, so no number
in ``results/`` or ``benchmarks/results/`` stands without the run that wrote it.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("torch", "transformers", "pytorch-lightning", "hydra-core", "numpy", "scikit-learn", "tokenizers")


# CPU flags of hardware bf16 matmuls: oneDNN runs bf16 Linear layers on AMX tiles or AVX512-BF16
BF16_FLAGS = {"amx_bf16": "AMX", "avx512_bf16": "AVX512-BF16"}
CPUINFO = Path("/proc/cpuinfo")


def cpu_info() -> tuple[str, list[str]]:
    """The CPU's model name and its bf16 matmul units (names of :data:`BF16_FLAGS`), from
    /proc/cpuinfo; ("", []) where there is none (not Linux)."""
    try:
        text = CPUINFO.read_text()
    except OSError:
        return "", []
    name = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")), "")
    flags = set(text.split())
    return name, [unit for flag, unit in BF16_FLAGS.items() if flag in flags]


def device() -> str:
    """The device a row was measured on: the GPU, or the CPU with its model and bf16 units (a bf16
    speed-up depends on them)."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    name, bf16 = cpu_info()
    about = ", ".join(x for x in (name, f"bf16: {' and '.join(bf16) or 'none'}") if x)
    return f"CPU ({about}), {os.cpu_count()} cores ({platform.machine()}), no GPU"


# what the results command and the benchmarks write themselves: a page written earlier in the same
# run must not mark the next one "+dirty"
OUTPUTS = ("results", "benchmarks/results", "README.md")


def commit(root: Path = ROOT) -> str:
    """HEAD's short hash, with ``+dirty`` when tracked files other than :data:`OUTPUTS` differ
    from it. A copy of a checkout sent to another machine to run cannot say it itself (its
    ``.git`` is absent, or not this checkout's): ``PROBING_COMMIT``, set by whoever sent it, names
    the commit, and the header says where the name came from."""
    said = os.environ.get("PROBING_COMMIT")
    if said:
        return f"{said} (from PROBING_COMMIT)"
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                *(f":(exclude){p}" for p in OUTPUTS)], cwd=root, capture_output=True, text=True,
                               check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


# set by a command that runs many jobs (the results command) for all of them: runs that share it
# were made by one invocation of the same code, even from a checkout with uncommitted changes
SESSION = "PROBING_SESSION"


def record(command: str | None = None) -> dict:
    return {
        "command": command or " ".join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "device": device(),
        "commit": commit(),
        "python": platform.python_version(),
        "packages": versions(),
        "session": os.environ.get(SESSION),
    }


def header(rec: dict) -> str:
    """Markdown lines naming the run, for the top of a results file."""
    pkgs = ", ".join(f"{k} {v}" for k, v in rec["packages"].items())
    return (f"Written by `{rec['command']}` on {rec['date']}, {rec['device']}, commit `{rec['commit']}`, "
            f"Python {rec['python']} ({pkgs}). Do not edit by hand: re-run the command.\n")
