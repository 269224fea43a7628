"""Fuzz the `.inr` reader with hypothesis-generated mutations of valid files.

    python benchmarks/fuzz_container.py --cases 10000

Two mutators (tests/inr_mutations.py) over small valid files of every arch, precision and
packing: `bytes` flips, truncates and splices bytes and header entries; `fields` sets the
metadata fields and hyper-parameters to edge values (huge, zero, negative, wrong type,
mismatched), keeping the rest of the file valid so that the reader's later checks run.
A case passes when the file is refused with InrcodecError, or read, built and run on a few
coordinates. Prints, per mutator, how many cases ran, were refused, were still readable,
and the time; exits 1 on the first other exception (a crash), which hypothesis shrinks.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from hypothesis import HealthCheck, given, settings

from inrcodec import container
from inrcodec.errors import InrcodecError
from tests.inr_mutations import field_mutated, mutated, sample_files

MUTATORS: dict[str, Callable] = {"bytes": mutated, "fields": field_mutated}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="in all, split evenly")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mutators", nargs="+", choices=list(MUTATORS), default=list(MUTATORS))
    args = parser.parse_args(argv)
    samples = sample_files()
    per_file = max(1, args.cases // (len(samples) * len(args.mutators)))
    for mutator in args.mutators:
        counts = {"refused": 0, "read": 0}
        start = time.perf_counter()
        for name, data in samples.items():
            run = settings(
                max_examples=per_file,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )(given(MUTATORS[mutator](data))(_checker(counts)))
            run._hypothesis_internal_use_seed = args.seed  # reproducible runs
            try:
                run()
            except Exception:
                print(
                    f"crash: {mutator} mutation of {name} (shrunk example above)", file=sys.stderr
                )
                raise
        total = counts["refused"] + counts["read"]
        print(
            f"{mutator}: {total} cases over {len(samples)} files in "
            f"{time.perf_counter() - start:.1f} s: {counts['refused']} refused cleanly, "
            f"{counts['read']} still readable, 0 crashes"
        )
    return 0


def _checker(counts: dict[str, int]) -> Callable[[bytes], None]:
    """Read, build and run one mutated file; count it as refused or read."""

    def check(data: bytes) -> None:
        try:
            inr = container.from_bytes(data)
        except InrcodecError:
            counts["refused"] += 1
            return
        inr.build_model()(torch.zeros(4, inr.in_features))
        counts["read"] += 1

    return check


if __name__ == "__main__":
    sys.exit(main())
