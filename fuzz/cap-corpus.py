#!/usr/bin/env python3
"""Shrinks fuzz/corpus/<target>/ to at most N files that keep as many coverage edges as possible.

`cargo fuzz cmin` keeps every input that adds an edge, which for these targets is still about a
thousand files (each operation's decoder is its own code, so many edges are reached by one input
only). This script measures each input's own edges (one libFuzzer merge process per input, so run
`cargo fuzz cmin <target>` first to keep the count down), then picks greedily the input that adds
the most edges not yet covered, smallest first on ties, until N inputs are chosen.

Usage (from the repository root, after `cargo +nightly fuzz build -O --fuzz-dir fuzz`):
    fuzz/cap-corpus.py <target> [N=300] [--binary PATH]
"""
import argparse
import pathlib
import shutil
import subprocess
import tempfile

FUZZ = pathlib.Path(__file__).resolve().parent


def edges_of(binary: pathlib.Path, path: pathlib.Path, work: pathlib.Path) -> set[int]:
    """The coverage edges one input reaches, from a merge control file of that input alone."""
    inputs, out, control = work / "in", work / "out", work / "control"
    for d in (inputs, out):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    shutil.copy(path, inputs / path.name)
    control.unlink(missing_ok=True)
    subprocess.run(
        [str(binary), "-merge=1", f"-merge_control_file={control}", str(out), str(inputs)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    edges: set[int] = set()
    for line in control.read_text().splitlines():
        if line.startswith("COV "):
            edges.update(int(e) for e in line.split()[2:])
    return edges


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("target")
    parser.add_argument("max_files", nargs="?", type=int, default=300)
    parser.add_argument(
        "--binary",
        type=pathlib.Path,
        help="fuzz target binary (default: fuzz/target/x86_64-unknown-linux-gnu/release/<target>)",
    )
    args = parser.parse_args()
    binary = args.binary or FUZZ / "target/x86_64-unknown-linux-gnu/release" / args.target
    corpus = FUZZ / "corpus" / args.target
    files = sorted(p for p in corpus.iterdir() if p.is_file())

    with tempfile.TemporaryDirectory() as tmp:
        sets = {p: edges_of(binary, p, pathlib.Path(tmp)) for p in files}
    universe = set().union(*sets.values()) if sets else set()

    chosen: list[pathlib.Path] = []
    covered: set[int] = set()
    remaining = dict(sets)
    while remaining and len(chosen) < args.max_files:
        best = max(remaining, key=lambda p: (len(remaining[p] - covered), -p.stat().st_size, p.name))
        gain = remaining.pop(best) - covered
        if not gain:
            break
        chosen.append(best)
        covered |= gain

    keep = set(chosen)
    for p in files:
        if p not in keep:
            p.unlink()
    share = 100 * len(covered) / len(universe) if universe else 100.0
    print(
        f"{args.target}: kept {len(chosen)} of {len(files)} files, "
        f"{len(covered)} of {len(universe)} edges ({share:.1f}%)"
    )


if __name__ == "__main__":
    main()
