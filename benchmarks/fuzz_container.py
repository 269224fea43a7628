"""Fuzz the `.inr` reader with hypothesis-generated mutations of valid files.

    python benchmarks/fuzz_container.py --cases 10000

Prints how many cases ran, how many files were refused cleanly (InrcodecError), how many
were still readable, and exits 1 on the first other exception (a crash).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings

from inrcodec import container
from inrcodec.errors import InrcodecError
from tests.inr_mutations import mutated
from tests.test_container import make_inr


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    counts = {"refused": 0, "read": 0}
    valid = {
        f"{p}-{packing}": container.to_bytes(make_inr(p, width=8), packings=(packing,))
        for p in container.PRECISIONS
        for packing in container.PACKINGS
    }

    def check(data: bytes) -> None:
        try:
            container.from_bytes(data).build_model()
            counts["read"] += 1
        except InrcodecError:
            counts["refused"] += 1

    start = time.perf_counter()
    for precision, data in valid.items():
        run = settings(
            max_examples=max(1, args.cases // len(valid)),
            deadline=None,
            database=None,
            derandomize=False,
            suppress_health_check=list(HealthCheck),
        )(given(mutated(data))(check))
        run._hypothesis_internal_use_seed = args.seed  # reproducible runs
        run()
        print(f"{precision}: done", file=sys.stderr)
    total = counts["refused"] + counts["read"]
    print(
        f"{total} cases in {time.perf_counter() - start:.1f} s: {counts['refused']} refused "
        f"cleanly, {counts['read']} still readable, 0 crashes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
