"""Copy the CPU studies' figures and tables into docs/ (`make docs-figures`), with their sources.

results/ is regenerated and kept out of the repository; the manual's pages show committed
copies under docs/img/.  Each copy is listed in docs/img/SOURCES.md with what it was built from:
the study, its runs, their commits, the machine and the dates, read from the run folders.
"""

import argparse
import shutil
import sys
from pathlib import Path

from topk_repro.results.collect import collect_runs

ROOT = Path(__file__).resolve().parents[1]

# study -> the files of results/<study>/ the manual shows
SHOWN = {
    "demo": ("demo_memorisation.png", "demo.md", "demo_vs_ce.md", "demo_memorisation.md"),
    "study_cpu": (
        "study_cpu.png",
        "study_cpu_memorisation.png",
        "study_cpu.md",
        "study_cpu_vs_ce.md",
        "study_cpu_memorisation.md",
        "claims.md",
    ),
    "data_size_cpu": (
        "data_size_cpu.png",
        "data_size_cpu_memorisation.png",
        "data_size_cpu.md",
        "data_size_cpu_vs_ce.md",
        "data_size_cpu_memorisation.md",
        "claims.md",
    ),
}


def provenance(runs_dir: Path) -> str:
    """'n runs, commit(s) ..., host ..., <first> to <last> (UTC)' of a study's run folders."""
    runs = collect_runs(runs_dir)
    finished = runs[runs["status"] == "finished"]
    commits = ", ".join(sorted(str(c)[:7] for c in finished["git_commit"].dropna().unique()))
    hosts = ", ".join(sorted(_hosts(finished)))
    ends = finished["end_time"].dropna().sort_values()
    span = f"{ends.iloc[0][:16]} to {ends.iloc[-1][:16]} UTC" if len(ends) else "no end time"
    return f"{len(finished)} finished runs, commit {commits}, host {hosts}, {span}"


def _hosts(finished) -> set[str]:
    import json

    hosts = set()
    for folder in finished["run_dir"]:
        record = json.loads((Path(folder) / "run.json").read_text())
        hosts.add(f"{record.get('host')} ({record.get('platform', '')[:40]})")
    return hosts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=ROOT / "results")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# Sources of the figures and tables in this folder", ""]
    lines += ["Copied from results/<study>/ by `make docs-figures`; built from these runs:", ""]
    for study, names in SHOWN.items():
        source = args.results / study
        if not source.is_dir():
            print(f"skipping {study}: {source} does not exist (run its study first)")
            continue
        copied = []
        for name in names:
            target = name if name.startswith(study) else f"{study}_{name}"
            shutil.copyfile(source / name, args.out / target)
            copied.append(target)
        lines.append(f"- **{study}**: {provenance(args.runs / study)}: {', '.join(copied)}")
        print(f"{study}: {len(copied)} files -> {args.out}")
    (args.out / "SOURCES.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
