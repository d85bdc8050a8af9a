"""Mutation testing of the modules whose errors would reach users silently (`make mutation`).

    python scripts/mutation.py [--module NAME ...] [--limit N] [--out results/mutation.json]

Each mutant changes one operator or constant of one module (`<` to `<=`, `+` to `-`, `and` to
`or`, a number n to n + 1, `True` to `False`, a `not` dropped, ...), one at a time; the module's
tests then run (the quick ones, stopping at the first failure).  A mutant is killed when they
fail, survives when they pass.  The script prints the score per module and every survivor
(file, line, change), and writes them as JSON.  The mutants live in a temporary copy of both
packages, put first on PYTHONPATH: the checkout is never changed, so runs training beside it
are safe (tests that start `python src/train.py` import the checkout's code, not the mutant).
`--limit N` tries N mutants per module, evenly spread (a quick look); without it, every one.
"""

import argparse
import ast
import copy
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "topk_repro"
LIBRARY = ROOT / "smooth-topk" / "src" / "smooth_topk"

# module -> the tests that answer for it
TARGETS = {
    "label_noise": (
        SRC / "data" / "label_noise.py",
        [
            "tests/test_noise_distributions.py",
            "tests/test_label_noise_sources.py",
            "tests/test_survivors.py",
            "tests/test_config_checks.py",
        ],
    ),
    "identity": (
        SRC / "config" / "identity.py",
        ["tests/test_identity.py", "tests/test_survivors.py"],
    ),
    "claims": (SRC / "results" / "claims.py", ["tests/test_results.py"]),
    "preconditions": (SRC / "results" / "preconditions.py", ["tests/test_results.py"]),
    "statistics": (SRC / "results" / "statistics.py", ["tests/test_results.py"]),
    "metrics": (
        SRC / "engine" / "metrics.py",
        ["tests/test_survivors.py", "tests/test_training.py", "tests/test_diagnostics.py"],
    ),
    "diagnostics": (
        SRC / "engine" / "diagnostics.py",
        ["tests/test_survivors.py", "tests/test_diagnostics.py"],
    ),
    "loss_wiring": (
        SRC / "losses" / "topk_svm.py",
        ["tests/test_survivors.py", "tests/test_loss_wiring.py", "tests/test_losses.py"],
    ),
    "functional": (LIBRARY / "functional.py", ["smooth-topk/tests"]),
}

SWAPS = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.And: ast.Or,
    ast.Or: ast.And,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass
class Mutant:
    module: str
    line: int
    change: str
    status: str = ""  # killed | survived | timeout


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the constant nodes that are docstrings (never mutated)."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        first = body[0] if isinstance(body, list) and body else None
        constant = first.value if isinstance(first, ast.Expr) else None
        if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
            found.add(id(constant))
    return found


def sites(tree: ast.AST) -> list[tuple[int, str]]:
    """(index among ast.walk's nodes, description) of every place one mutation applies."""
    skip = _docstrings(tree)
    found = []
    for index, node in enumerate(ast.walk(tree)):
        if isinstance(node, (ast.BinOp, ast.BoolOp)) and type(node.op) in SWAPS:
            found.append((index, f"{type(node.op).__name__} -> {SWAPS[type(node.op)].__name__}"))
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in SWAPS:
            found.append(
                (index, f"{type(node.ops[0]).__name__} -> {SWAPS[type(node.ops[0])].__name__}")
            )
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            found.append((index, "not dropped"))
        elif isinstance(node, ast.Constant) and id(node) not in skip:
            if isinstance(node.value, bool):
                found.append((index, f"{node.value} -> {not node.value}"))
            elif isinstance(node.value, (int, float)):
                found.append((index, f"{node.value!r} -> {node.value + 1!r}"))
    return found


def mutated(tree: ast.AST, index: int) -> ast.AST:
    """A copy of `tree` with the mutation at node `index` (ast.walk order) applied."""
    tree = copy.deepcopy(tree)
    node = list(ast.walk(tree))[index]
    if isinstance(node, (ast.BinOp, ast.BoolOp)):
        node.op = SWAPS[type(node.op)]()
    elif isinstance(node, ast.Compare):
        node.ops[0] = SWAPS[type(node.ops[0])]()
    elif isinstance(node, ast.UnaryOp):  # `not x` -> `not not x`, the truth of x
        node.operand = ast.UnaryOp(op=ast.Not(), operand=node.operand)
    elif isinstance(node.value, bool):
        node.value = not node.value
    else:
        node.value = node.value + 1
    return ast.fix_missing_locations(tree)


def run_tests(tests: list[str], copy_root: Path, timeout_s: float) -> str:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:randomly",
        "-p",
        "no:cacheprovider",
        "-m",
        "not slow and not interpreter",
        *tests,
    ]
    paths = [str(copy_root / "src"), str(copy_root / "library"), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return "timeout"  # an infinite loop is a detected mutant too
    return "survived" if done.returncode == 0 else "killed"


def copy_of_packages() -> Path:
    """Both packages copied into a temporary folder (src/topk_repro, library/smooth_topk)."""
    folder = Path(tempfile.mkdtemp(prefix="mutation-"))
    shutil.copytree(SRC, folder / "src" / "topk_repro")
    shutil.copytree(LIBRARY, folder / "library" / "smooth_topk")
    return folder


def in_copy(path: Path, copy_root: Path) -> Path:
    if path.is_relative_to(SRC):
        return copy_root / "src" / "topk_repro" / path.relative_to(SRC)
    return copy_root / "library" / "smooth_topk" / path.relative_to(LIBRARY)


def mutate_module(name: str, limit: int | None, copy_root: Path, timeout_s: float) -> list[Mutant]:
    source, tests = TARGETS[name]
    path = in_copy(source, copy_root)
    original = path.read_text()
    tree = ast.parse(original)
    found = sites(tree)
    if limit is not None and len(found) > limit:
        step = len(found) / limit
        found = [found[int(i * step)] for i in range(limit)]
    nodes = list(ast.walk(tree))
    mutants = []
    try:
        for count, (index, change) in enumerate(found, start=1):
            line = getattr(nodes[index], "lineno", 0)
            path.write_text(ast.unparse(mutated(tree, index)))
            status = run_tests(tests, copy_root, timeout_s)
            mutants.append(Mutant(name, line, change, status))
            print(f"  {name} {count}/{len(found)} line {line}: {change}: {status}", flush=True)
    finally:
        path.write_text(original)
    return mutants


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=sorted(TARGETS))
    parser.add_argument("--limit", type=int, help="mutants per module, evenly spread")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per test run")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "mutation.json")
    args = parser.parse_args()
    started = time.perf_counter()
    mutants = []
    copy_root = copy_of_packages()
    try:
        if run_tests(["tests/test_loss_wiring.py"], copy_root, args.timeout) != "survived":
            raise SystemExit("the tests fail on the unmutated copy: nothing to measure")
        for name in args.module or list(TARGETS):
            print(f"{name}: {TARGETS[name][0].relative_to(ROOT)}", flush=True)
            mutants += mutate_module(name, args.limit, copy_root, args.timeout)
    finally:
        shutil.rmtree(copy_root, ignore_errors=True)
    survivors = [m for m in mutants if m.status == "survived"]
    killed = len(mutants) - len(survivors)
    print(
        f"\nmutation score: {killed}/{len(mutants)} killed "
        f"({100 * killed / max(len(mutants), 1):.1f}%) in {time.perf_counter() - started:.0f} s"
    )
    for name in args.module or list(TARGETS):
        mine = [m for m in mutants if m.module == name]
        if mine:
            alive = sum(m.status == "survived" for m in mine)
            print(f"  {name}: {len(mine) - alive}/{len(mine)} killed")
    print("survivors:" if survivors else "no survivor")
    for mutant in survivors:
        print(f"  {TARGETS[mutant.module][0].relative_to(ROOT)}:{mutant.line}: {mutant.change}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps([asdict(m) for m in mutants], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
