"""Prepare the next GPU window here, on the CPU machine, before any window opens (windows are short and rare:
nothing should be built while one is open).

    python benchmarks/prepare_window.py            # writes .whl/ and window/ (both ignored by git)

Writes, in the repository root:

- ``.whl/``: wheels, for the device's Python 3.12, of what htrlab imports there and the device image lacks
  (``rapidfuzz``), fetched with ``pip download`` as the device README says; ``benchmarks/gpu_window.sh``
  installs them first (the default model's architecture is htrlab's own code: it needs no other package there);
- ``window/hooker-64.htrpack``: the Hooker train and val lines at height 64, each cut in one crop style drawn at
  random (``htrlab data pack --line-crop mixed --one-style-per-line``), the data of item 4's teacher search;
- ``window/synth-hand-64.htrpack``, ``window/synth-printed-64.htrpack``: the synthetic training lines of
  ``--synth`` (``make_synth_sets.py`` output, cut as page lines are; 600 and 400 of them, as the default
  model's CPU stages mixed in), passed to the window as ``--extra``.

Then prints the size of the working tree plus these against the 64 MiB one device call carries, and the call to
make in the window. The packs leave the test split out (scored back here, per crop style, with
``benchmarks/crop_styles.py``), which keeps them inside that limit.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARRY_LIMIT = 64 << 20
WHEELS = ["rapidfuzz==3.14.6"]
PLATFORMS = [
    "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64",
    "manylinux_2_17_x86_64",
    "manylinux2014_x86_64",
]


def fetch_wheels(dest: Path) -> None:
    """``pip download`` the device's missing wheels (Python 3.12, manylinux x86-64, no dependencies)."""
    dest.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
    cmd += ["--python-version", "3.12", "--implementation", "cp", "-d", str(dest)]
    cmd += [x for p in PLATFORMS for x in ("--platform", p)]
    subprocess.run([*cmd, *WHEELS], check=True)


def tree_bytes() -> int:
    """Bytes of what the device tool carries without being asked: tracked and untracked-but-not-ignored files."""
    names = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    return sum((ROOT / n.decode()).stat().st_size for n in names if n and (ROOT / n.decode()).is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="../shared/data/hooker-letters")
    ap.add_argument("--synth", default="runs/data2", help="make_synth_sets.py output (default runs/data2)")
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--out", default="window")
    ap.add_argument("--skip-wheels", action="store_true")
    args = ap.parse_args()
    out = ROOT / args.out
    out.mkdir(exist_ok=True)
    if not args.skip_wheels:
        fetch_wheels(ROOT / ".whl")
    htrlab = [sys.executable, "-m", "htrlab.cli.main", "data", "pack"]
    pack = [
        *htrlab,
        args.dataset,
        "-o",
        str(out / f"hooker-{args.height}.htrpack"),
        "--height",
        str(args.height),
    ]
    subprocess.run(
        [*pack, "--splits", "train,val", "--line-crop", "mixed", "--one-style-per-line"], check=True
    )
    synth = [ROOT / args.synth / name for name in ("synth-hand", "synth-printed")]
    synth = [d for d in synth if d.is_dir()]
    caps = {"synth-hand": "600", "synth-printed": "400"}  # as the default model's CPU stages mixed them in
    for d in synth:
        name = str(out / f"{d.name}-{args.height}.htrpack")
        opts = ["--height", str(args.height), "--splits", "train", "--max-lines", caps[d.name]]
        subprocess.run([*htrlab, str(d), "-o", name, *opts], check=True)
    carried = {p: p.stat().st_size for p in [*(ROOT / ".whl").glob("*.whl"), *out.iterdir()] if p.is_file()}
    total = tree_bytes() + sum(carried.values())
    for p, n in sorted(carried.items()):
        print(f"{n / 2**20:7.1f} MiB  {p.relative_to(ROOT)}")
    print(f"{total / 2**20:7.1f} MiB  with the working tree (a call carries {CARRY_LIMIT >> 20} MiB)")
    if total > CARRY_LIMIT:
        print(
            "too big for one call: leave the synthetic sets out (--synth '') or use a lower --height",
            file=sys.stderr,
        )
        return 1
    extra = "".join(f" --extra {args.out}/{d.name}-{args.height}.htrpack" for d in synth)
    print(
        "\nIn the window (device tool, carry ['.whl', 'window'], timeout_s 600):\n"
        f"  bash benchmarks/gpu_window.sh {args.out}/hooker-{args.height}.htrpack 5 $OUT --config "
        f"configs/window-teacher.yaml --init ''{extra} --probe-steps 200\n"
        "(5 minutes of training leave room in the 600 s a call may run for start-up, scoring, the speed table and "
        "the DataLoader probe; later windows: --init the last window's best-fp16.safetensors, no probe)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
