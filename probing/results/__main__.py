"""Regenerate every committed result from nothing, with one command.

    PROBING_DATA_DIR=../shared/data python -m probing.results            # every stage, every model
    python -m probing.results --only table3 analysis                      # some stages (others left as they are)
    python -m probing.results --models mpnet_base --only paper            # the whole paper for one model
    python -m probing.results --quick                                     # every stage on the tiny data (tested)

Each stage runs the project's own entry points through the runner (``train.py``, ``analyze.py``
configs, in this process; ``--jobs N`` runs N at once) into ``outputs/results/``, then writes
``results/<page>.md`` under a header naming the command, date, device, commit, package versions
and the stage's wall time, with the same content as data in ``results/<page>.json``. README's
"Results so far" block is rebuilt from that data. ``--quick`` writes under
``outputs/results-quick/`` and never touches ``results/`` or README.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid
from pathlib import Path

from probing import provenance
from probing.results import pages
from probing.results.plan import ROOT, Executor, Plan
from probing.results.stages import GROUPS, STAGES

log = logging.getLogger("probing.results")


def run_stages(args, argv: list[str], out: Path) -> None:
    plan = Plan.load(args.quick, out, args.results, args.models, settings=args.plan, jobs=args.jobs,
                     reuse="config" if args.resume else "same_commit", argv=argv, overrides=list(args.override))
    execute = Executor(plan)
    names = [n for name in (args.only or list(STAGES)) for n in GROUPS.get(name, [name])]
    total = time.perf_counter()
    for order, name in enumerate(STAGES):
        if name not in names:
            continue
        log.info("stage %s", name)
        start = time.perf_counter()
        written = STAGES[name].run(plan, execute)
        for page_name, page in written.items():
            pages.write(plan.results, page_name, page, argv, time.perf_counter() - start, plan.models, order)
    log.info("all stages: %.1f min", (time.perf_counter() - total) / 60)
    # README's block describes the committed pages: a run writing its pages elsewhere leaves it alone
    if not plan.quick and plan.results.resolve() == (ROOT / "results").resolve():
        pages.update_readme(ROOT / "README.md", pages.readme_block(plan.results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every stage on the tiny data, into outputs/results-quick")
    parser.add_argument("--only", nargs="+", choices=[*STAGES, *GROUPS],
                        help=f"run these stages (default: all); groups: {GROUPS}")
    parser.add_argument("--models", nargs="+", help="narrow every stage to these models (default: conf/models/)")
    parser.add_argument("--out", type=Path, help="where the runs go (default outputs/results[-quick])")
    parser.add_argument("--results", type=Path, help="where the pages go (default results/; --quick: under --out)")
    parser.add_argument("--resume", action="store_true",
                        help="read every finished run of the same config, whatever code wrote it (default: only "
                             "runs of this same committed code)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, one torch thread each")
    parser.add_argument("--override", nargs="+", default=[], metavar="KEY=VALUE",
                        help="Hydra overrides added to every run (e.g. extract.precision=bf16)")
    parser.add_argument("--plan", nargs="+", default=[], metavar="KEY=VALUE",
                        help="Hydra overrides of conf/results.yaml itself (e.g. quantity_probes=[rollout])")
    parser.add_argument("--cache", type=Path, help="the attention and model cache (default: paths.cache_dir; "
                        "--quick: <out>/cache)")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if not args.quick and not os.environ.get("PROBING_DATA_DIR"):
        parser.error("set PROBING_DATA_DIR to the corpora (../shared/data here), or use --quick")
    out = args.out or ROOT / "outputs" / ("results-quick" if args.quick else "results")
    cache = args.cache or (out / "cache" if args.quick else None)
    # every run of this invocation shares these (in this process, its workers and its processes):
    # the session lets a later stage read an earlier one's runs; the cache keeps --quick's own
    env = {provenance.SESSION: uuid.uuid4().hex, **({"PROBING_CACHE_DIR": str(cache)} if cache else {})}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        run_stages(args, argv, out)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return 0


if __name__ == "__main__":
    sys.exit(main())
