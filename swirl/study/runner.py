"""The study's command: every seed's data and arms (in this process, or ``jobs`` seeds at once in child
processes), then the report. ``python -m swirl.study --config recipes/minigrid/quality-smollm2.yaml`` (what
``benchmarks/quality_minigrid.py`` and ``make quality`` run); rerun the same command to resume."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import datasets

from swirl.config_fields import parse_config
from swirl.errors import SwirlError
from swirl.study.arms import arm_lines, finished_lines, labels_used
from swirl.study.study_config import QualityConfig, check_same_study
from swirl.study.regime_data import seed_datasets
from swirl.study.report import markdown, report

DESCRIPTION = ("Does self-improvement help? SWIRL against the obvious baselines on MiniGrid, over seeds, one "
               "command, resumable.")


def run_seeds_in_processes(config: QualityConfig, argv: list[str]) -> dict[str, float]:
    """Run every seed as ``python -m swirl.study <argv> --seeds k --jobs 1``, ``config.jobs`` at a time; return
    each process's wall time. A failed seed is named with its log; the other seeds' work is kept."""
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // config.jobs)
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}

    def run(seed: int) -> tuple[int, int, float]:
        start = time.perf_counter()
        with open(out / f"seed_{seed}.log", "a") as log:
            code = subprocess.call([sys.executable, "-m", "swirl.study", *argv, "--seeds", str(seed), "--jobs", "1",
                                    "--write_report", "false"], stdout=log, stderr=subprocess.STDOUT, env=env)
        return seed, code, time.perf_counter() - start

    print(f"running seeds {config.seeds}, {config.jobs} at a time, {threads} thread(s) each; logs in {out}/",
          flush=True)
    with ThreadPoolExecutor(config.jobs) as pool:
        results = list(pool.map(run, config.seeds))
    failed = [f"seed {seed} (exit {code}, see {out}/seed_{seed}.log)" for seed, code, _ in results if code]
    if failed:
        raise SwirlError("the quality study failed for " + ", ".join(failed) + "; rerun to resume")
    return {f"seed_{seed}_process": seconds for seed, _, seconds in results}


def main(argv: list[str] | None = None, prog: str = "python -m swirl.study") -> None:
    config = parse_config(QualityConfig, argv, description=DESCRIPTION, prog=prog)
    check_same_study(config)
    datasets.disable_progress_bars()
    per_seed: dict[int, dict[str, list[dict]]] = {}
    timings: dict[str, float] = {}  # of this invocation: a resumed run skips its finished stages
    if config.jobs > 1 and len(config.seeds) > 1 and not config.report_only:  # the seeds' work in parallel processes
        timings |= run_seeds_in_processes(config, list(sys.argv[1:] if argv is None else argv))
    collect_only = config.jobs > 1 and len(config.seeds) > 1
    labels: dict[str, int] = {}
    for seed in config.seeds:
        start = time.perf_counter()
        data, data_all = seed_datasets(config, seed)
        per_seed[seed] = (finished_lines(config, seed) if config.report_only or collect_only
                          else arm_lines(config, seed, data, data_all))
        labels |= labels_used(config, seed, data, data_all)
        timings[f"seed_{seed}"] = time.perf_counter() - start
        if config.write_report:  # after every seed: a partial study is still a readable one
            report(config, per_seed, timings, labels)
    if config.write_report:
        result = report(config, per_seed, timings, labels)
        print(markdown(result))
        print(f"wrote {Path(config.output_dir) / 'quality.json'}")
