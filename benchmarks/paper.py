"""The whole paper for one model from an empty cache: ``python -m probing.results --models M --only
paper`` (Table 3 with its seeds and control task, and every analysis job: Tables 1 and 2, the surface
and similarity figures), timed as a whole and stage by stage (from each page's own header).

    PROBING_DATA_DIR=../shared/data python benchmarks/paper.py [--model mpnet_base] [--jobs 2]
        [--override extract.precision=bf16] [--out benchmarks/results/paper.md]

The runs, their pages and the cache (models included) go to a temporary folder, so nothing is
reused; the committed results are not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import markdown_table, write_results  # noqa: E402  (benchmarks/ is the script's folder)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from probing import provenance  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mpnet_base")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--override", nargs="*", default=[])
    parser.add_argument("--goal-minutes", type=float, default=15.0)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "benchmarks" / "paper.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "probing.results", "--models", args.model, "--only", "paper", "--jobs",
               str(args.jobs), "--out", f"{tmp}/runs", "--results", f"{tmp}/pages", "--cache", f"{tmp}/cache",
               *(["--override", *args.override] if args.override else [])]
        start = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "WANDB_MODE": "offline"})
        total = time.perf_counter() - start
        stages = {}
        for page in sorted(Path(tmp, "pages").glob("*.json")):
            data = json.loads(page.read_text())
            stages[page.stem] = data["provenance"]["wall_time_s"]
    shown = " ".join(["python", "-m", "probing.results", *cmd[3:]]).replace(tmp, "<tmp>")
    rows = [{"stage": name, "minutes": round(s / 60, 1)} for name, s in stages.items()
            if not name.startswith("analysis_") or name == f"analysis_{args.model}"]
    rows.append({"stage": "total (command start to end, cache and model included)", "minutes": round(total / 60, 1)})
    met = "yes" if total / 60 <= args.goal_minutes else "**no**"
    text = (f"`{shown}` from an empty cache on {provenance.device()}; goal: at most {args.goal_minutes:.0f} "
            f"minutes, met: {met}. The analysis stage writes every model's page in one stage: its time is the "
            f"stage's.\n\n" + markdown_table(["stage", "minutes"], [[r["stage"], f"{r['minutes']}"] for r in rows]) + "\n")
    write_results(args.out, text, [{**r, "model": args.model, "device": provenance.device(), "override": args.override, "goal_met": met == "yes"}
                                   for r in rows])


if __name__ == "__main__":
    main()
