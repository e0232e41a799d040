"""Probe: seconds per forward + backward of the bundled default model on a GPU, by memory layout and precision.

    python benchmarks/gpu_step_time.py [--batch 32] [--steps 8]

Each step uses a new line width (800, 816, ... px at height 96), as width-bucketed training does, so cuDNN's
per-shape cost is included. The first step of each variant is reported apart (warm-up). Needs CUDA.
"""

from __future__ import annotations

import argparse
import time

import torch

from htrlab.bundled import default_checkpoint
from htrlab.models.checkpoint import load_checkpoint


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this probe times GPU training steps")
    torch.manual_seed(0)
    for channels_last in (False, True):
        for precision in ("fp32", "bf16"):
            model = load_checkpoint(default_checkpoint("torch")).model.cuda().train()
            if channels_last:
                model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
            times = []
            for i in range(args.steps):
                width = 800 + 16 * i
                x = torch.rand(args.batch, 1, 96, width, device="cuda")
                torch.cuda.synchronize()
                t = time.perf_counter()
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16"):
                    log_probs, _ = model(x, torch.full((args.batch,), width))
                log_probs.float().sum().backward()
                torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
            rest = ", ".join(f"{t:.3f}" for t in times[1:])
            layout = "channels-last" if channels_last else "standard"
            print(f"{layout:13s} {precision}: first {times[0]:.2f} s, then {rest} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
