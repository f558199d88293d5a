"""Real SIGINTs at random moments into a program shaped like `coexist run` (steps entered and left in
a loop, the closing line printed on Interrupted): how many runs print a line after the closing line.

    .venv/bin/python bench/closing_line.py --runs 2000

The signal must be handled just as a step's `__enter__` returns for the old generator-based
`log.step` to go wrong, a window a few bytecodes wide: it takes thousands of runs to see it.
tests/unit/test_signals.py puts the signal exactly there instead; this counts how often real
signals do. No lab, no root.
"""

from __future__ import annotations

import argparse
import collections
import random
import signal
import subprocess
import sys
import time

CHILD = """
import sys
from coexist.base import interrupt, log

interrupt.install()
log.to_stderr()
print("ready", flush=True)
try:
    with log.step("scenario"):
        while True:
            with log.step("measure after [fix]"):
                pass
except interrupt.Interrupted as stop:
    print(f"coexist: interrupted ({stop.signame}) during {stop.during}", file=sys.stderr)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--python", default=sys.executable, help="the Python (and coexist) to test")
    args = parser.parse_args()
    late, during = 0, collections.Counter[str]()
    for _ in range(args.runs):
        child = subprocess.Popen([args.python, "-c", CHILD], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        assert child.stdout is not None
        child.stdout.readline()
        time.sleep(random.uniform(0.0005, 0.005))
        child.send_signal(signal.SIGINT)
        _out, err = child.communicate()
        lines = err.strip().splitlines()
        closing = [n for n, line in enumerate(lines) if line.startswith("coexist: interrupted")]
        during[lines[closing[-1]].split(" during ", 1)[1] if closing else "(no closing line)"] += 1
        if not closing or closing[-1] != len(lines) - 1:
            late += 1
            print("\n".join(lines[-3:]) + "\n--")
    print(f"{late} of {args.runs} runs printed a line after the closing line; "
          f"the signal came during: {dict(during)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
