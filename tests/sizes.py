"""The default sizes of the sized tests, and the check .ci/run makes that a run was not smaller.

`RAFT_SIM_SEEDS` and `LINCHECK_SECONDS` may grow these runs locally (the long modes); CI refuses
the variables and, after the run, `python -m tests.sizes <report>` fails if a sized test ran
smaller than its default or did not run at all (the report is what conftest wrote to
$KUBELITE_SUITE_REPORT).
"""

from __future__ import annotations

import json
import sys

DEFAULTS = {"raft_sim_seeds": 2000, "lincheck_seconds": 3.0}


def shortfalls(sizes: dict[str, float]) -> list[str]:
    """What ran smaller than its default, in words. Pure."""
    return [
        f"{name} ran {sizes.get(name, 'not at all')} (the default is {floor:g})"
        for name, floor in DEFAULTS.items()
        if sizes.get(name, -1) < floor
    ]


def main(argv: list[str]) -> int:
    with open(argv[1]) as f:
        sizes = json.load(f)
    short = shortfalls(sizes)
    if short:
        print("error: the sized tests ran smaller than their defaults: " + "; ".join(short), file=sys.stderr)
        return 1
    print(f"sized tests ran at full size: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
