"""Record how long each test module took, for the longest-first scheduling in tests/conftest.py.

    .venv/bin/python -m pytest -n 0 --junitxml=/tmp/suite.xml tests
    .venv/bin/python tests/module_seconds.py /tmp/suite.xml

writes tests/module_seconds.json: seconds per module (setup, call and teardown of its tests, module fixtures
included), measured in one process so that the figures do not include time spent waiting for the other worker.
"""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "module_seconds.json"


def module_of(classname: str) -> str:
    """'tests.monitor.test_monitor_cli.TestX' -> 'tests/monitor/test_monitor_cli.py' (the longest prefix that is a
    file)."""
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        path = Path(*parts[:end]).with_suffix(".py")
        if (REPO / path).is_file():
            return path.as_posix()
    raise ValueError(f"no test module for {classname!r}")


def seconds_per_module(junit: Path) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit).getroot().iter("testcase"):
        totals[module_of(case.get("classname"))] += float(case.get("time", 0))
    return {m: round(s, 1) for m, s in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    seconds = seconds_per_module(Path(argv[0]))
    OUT.write_text(json.dumps({"about": "seconds per test module, measured one module at a time with -n 0 "
                                        "(tests/module_seconds.py); only the order matters",
                               "seconds": seconds}, indent=1) + "\n", encoding="utf-8")
    print(f"{len(seconds)} modules, {sum(seconds.values()):.0f} s in all; written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
