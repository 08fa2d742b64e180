"""Summarises side-by-side runs of the page (issue 19, BENCHMARKS.md "The mask, pooling and GELU").

Each line of the logs is one run of `SLIDES=4 node tests/web/threads.mjs http://127.0.0.1:PORT/ webgpu`,
as the loop in BENCHMARKS.md writes it:

    round R port P: first S | moves S S S S | queries MS MS

Runs of two ports are paired by their order in the logs (round by round, the builds alternated),
and for the first soft labels, the first slider move, the mean of the moves and the second warm
query it prints both builds' range and mean, the median of the per-round ratios (A over B) and in
how many rounds B was faster.

    python3 scripts/page_rounds.py A_PORT B_PORT LOG...
"""

import re
import statistics as st
import sys

LINE = re.compile(r"round (\d+) port (\d+): first ([\d.]+) \| moves ([\d. ]+)\| queries ([\d. ]+)")


def main() -> None:
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    a, b = sys.argv[1], sys.argv[2]
    runs: dict[str, list[tuple[float, float, float, list[float], float]]] = {}
    for path in sys.argv[3:]:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                m = LINE.match(line)
                if not m:
                    sys.exit(f"{path}:{number}: not a run line: {line.strip()!r}")
                _, port, first, moves, queries = m.groups()
                mv = [float(x) for x in moves.split()]
                qs = [float(x) for x in queries.split()]
                runs.setdefault(port, []).append((float(first), mv[0], st.mean(mv), mv, qs[-1]))
    for port in (a, b):
        if port not in runs:
            sys.exit(f"no runs of port {port} in the logs")
    ra, rb = runs[a], runs[b]
    if len(ra) != len(rb):
        sys.exit(f"port {a} has {len(ra)} runs and port {b} {len(rb)}: they cannot be paired")
    for name, i in [("first soft labels", 0), ("first move", 1), ("mean move", 2), ("second query", 4)]:
        xa, xb = [r[i] for r in ra], [r[i] for r in rb]
        ratios = [x / y for x, y in zip(xa, xb)]
        print(
            f"{name:18} {a}: {min(xa):.2f}-{max(xa):.2f} mean {st.mean(xa):.2f} | "
            f"{b}: {min(xb):.2f}-{max(xb):.2f} mean {st.mean(xb):.2f} | "
            f"median ratio {st.median(ratios):.2f}, {b} faster in {sum(r > 1 for r in ratios)} of {len(ratios)}"
        )
    ma, mb = [m for r in ra for m in r[3]], [m for r in rb for m in r[3]]
    print(
        f"all moves {a}: {min(ma):.2f}-{max(ma):.2f}, {sum(m <= 2 for m in ma)} of {len(ma)} <= 2 s | "
        f"{b}: {min(mb):.2f}-{max(mb):.2f}, {sum(m <= 2 for m in mb)} of {len(mb)} <= 2 s"
    )


if __name__ == "__main__":
    main()
