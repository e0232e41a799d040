"""Helpers shared by the subcommands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def write_output(text: str, out: str | None) -> None:
    """Results go to stdout, or to ``-o FILE``."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, default=str)


def add_on_error(p: Any) -> None:
    p.add_argument(
        "--on-error",
        choices=["error", "skip"],
        default="error",
        help="stop at the first bad sample (default) or skip bad samples and report how many",
    )
