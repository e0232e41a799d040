"""The hostile-input benchmark runs end to end (a few damaged files of every kind through every command) and
finds no traceback, hang or crash; its full runs are in docs/RESULTS.md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {"data check": 4, "evaluate": 4, "recognize": 10, "segment": 10}


def test_hostile_inputs_benchmark_runs_clean(tmp_path: Path) -> None:
    out = tmp_path / "hostile.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "hostile_inputs.py"),
            "--cases",
            "14",
            "--seed",
            "3",
            "--timeout",
            "120",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=900,
    )
    summary = json.loads(out.read_text())["summary"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert summary["commands"] == 28 and set(summary["outcomes"]) <= {"read", "clean error"}
    ran = {c: sum(n for k, n in summary["by_command"].items() if k.startswith(c + " /")) for c in COMMANDS}
    assert ran == COMMANDS  # every command ran on its files (2 of each of the 7 kinds)
