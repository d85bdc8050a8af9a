"""`make demo`: the paper's mechanism at full strength in under five minutes on 2 CPU cores.

Cross-entropy and the smooth top-5 SVM (L_{5,1}) train on 500 images of the synthetic set with
block label noise p = 0.6 (48% of the labels changed), 90 epochs, 2 seeds each, two runs at a
time: a schedule long enough for cross-entropy to go on to fit most of the changed labels.
After every epoch the engine measures how many of the changed labels each model predicts: the
noisy-label fit.
The demo ends with that fit per epoch (mean and 95% interval over seeds), the test accuracies
and their paired differences, and the figures under results/demo/.  It is not sized to test the
paper's accuracy claims (`make study-cpu` is): it prints differences, never a verdict.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from topk_repro.results.collect import collect_runs
from topk_repro.results.diagnostics import fit_by_epoch, memorisation_curves
from topk_repro.results.layout import finished_runs, paired_differences

ROOT = Path(__file__).resolve().parents[1]

RUNS, OUT = ROOT / "runs" / "demo", ROOT / "results" / "demo"


def train(extra: list[str]) -> int:
    """The preset's grid (configs/experiment/demo.yaml), two single-threaded runs at a time."""
    command = [sys.executable, str(ROOT / "src" / "train.py"), "-m", "experiment=demo", *extra]
    return subprocess.call(command, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})


def summary() -> str:
    """The noisy-label fit per epoch and the test differences, for the terminal."""
    runs = collect_runs(RUNS)
    finished = finished_runs(runs, "demo")
    fit = fit_by_epoch(memorisation_curves(finished))
    differences = paired_differences(runs, "demo")
    lines = [
        "Noisy-label fit: % of the probed training images whose label was changed that the model",
        "predicts with their noisy label (top-1); mean [95% interval] over seeds.",
        fit.to_string(),
        "",
        "Test accuracy, L_{5,1} minus CE, paired by seed:",
    ]
    for row in differences.itertuples():
        lines.append(f"  {row.metric[5:]}: {row.text}")
    return "\n".join(lines)


def main() -> int:
    print(
        "make demo: synthetic CIFAR-format data (NOT CIFAR-100), CE vs smooth top-5 SVM at "
        "label noise p = 0.6, 2 seeds, 90 epochs, small CNN on the CPU\n",
        flush=True,
    )
    started = time.perf_counter()
    status = train(sys.argv[1:])
    if status != 0:
        return status
    print(f"\ntraining took {time.perf_counter() - started:.0f} s", flush=True)
    tables = [sys.executable, str(ROOT / "scripts" / "make_tables.py")]
    tables += ["--runs-dir", str(RUNS), "--out-dir", str(OUT)]
    status = subprocess.call(tables, cwd=ROOT, stdout=subprocess.DEVNULL)
    if status != 0:
        return status
    print(f"\n{summary()}\n")
    print(
        f"Figures and tables: {OUT.relative_to(ROOT)}/ (demo_memorisation.png: the fit per "
        "epoch; demo.md, demo_vs_ce.md, claims.md).\n"
        "Synthetic data and 2 seeds at one noise level: this shows the mechanism, it is not a "
        "test of the claims at this size (make study-cpu is; docs/cpu-studies.md)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
