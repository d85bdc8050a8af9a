"""Build the W&B report of an experiment from its run folders (wandb-workspaces).

    python scripts/wandb_report.py --runs-dir runs --experiment cifar100_noise --entity E \
        [--project smooth-topk] [--out report.json] [--dry-run]

The report holds the paper's figures (results/wandb_export.py): test top-1/top-5 against noise
p per loss with intervals, `val/top5` and memorisation against epoch by loss and p, and every
loss compared.  Its spec is always built and validated (and written to --out).  With
--dry-run it prints what it would create and uploads nothing; otherwise it saves the report
to W&B and prints its address, or, without network or login, says that it did not upload.
Exit code 0 when the spec is valid (uploaded or not), 1 when the experiment has no runs.
"""

import argparse
import json
import sys
from pathlib import Path

from topk_repro.results.collect import collect_runs
from topk_repro.results.wandb_export import build_report, report_spec


def outline(spec: str) -> list[str]:
    """One line per block of a report spec: headings, and each panel grid's run sets and panels."""
    lines = []
    for block in json.loads(spec)["blocks"]:
        if block["type"] == "heading":
            lines.append(f"# {block['children'][0]['text']}")
        elif block["type"] == "panel-grid":
            metadata = block["metadata"]
            runsets = [r.get("name") for r in metadata.get("runSets", [])]
            panels = [
                p.get("config", {}).get("chartTitle") or p.get("viewType")
                for p in metadata.get("panelBankSectionConfig", {}).get("panels", [])
            ]
            lines.append(f"  panels {panels} over run sets {runsets}")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--entity", required=True)
    parser.add_argument("--project", default="smooth-topk")
    parser.add_argument("--out", type=Path, help="write the report's spec (JSON) here")
    parser.add_argument("--dry-run", action="store_true", help="print, upload nothing")
    args = parser.parse_args()
    runs = collect_runs(args.runs_dir)
    if runs.empty or not (runs["experiment_name"] == args.experiment).any():
        print(f"no runs of experiment {args.experiment} under {args.runs_dir}", file=sys.stderr)
        return 1
    offline = build_report(runs, args.experiment, args.entity, args.project)
    spec = report_spec(offline)
    if args.out:
        args.out.write_text(spec)
    print(f"report spec of {args.experiment}: valid ({len(spec)} bytes)")
    if args.dry_run:
        print(f"would create in {args.entity}/{args.project}: {offline.title}")
        print("\n".join(outline(spec)))
        return 0
    try:
        report = build_report(runs, args.experiment, args.entity, args.project, online=True)
        report.save()
    except Exception as error:  # no network, no login, no such project: W&B raises many kinds
        print(f"did not upload the report ({type(error).__name__}: {error}); the spec is valid")
        return 0
    print(f"report saved: {report.url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
