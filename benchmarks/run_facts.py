"""What every benchmark result records about its run: the exact command, the date and the machine."""

from __future__ import annotations

import platform
import sys
import time

import torch


def run_facts() -> dict[str, str]:
    return {
        "command": "python " + " ".join(sys.argv),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
    }
