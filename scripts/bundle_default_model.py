"""Copy a trained checkpoint into the package as the bundled default model (weights stored as float16),
with a model card that quotes the measured results of the benchmark run.

    python scripts/bundle_default_model.py runs/bench-htr-jand
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, replace
from pathlib import Path

from safetensors.torch import load_file, save_file

from htrlab.bundled import DEFAULT_MODEL
from htrlab.train.checkpoint import META_KEY, read_meta

CARD = """# Bundled default model: `{name}`

- **Architecture:** `{model}` ({params:,} parameters), input height {height} px, greedy CTC decoding.
- **Training data:** the Joseph Hooker correspondence (Hooker letters), train split ({train_lines} lines),
  selected on the val split. Trained from scratch, no pretraining, no synthetic data.
- **Recipe:** `{command}`: {budget} min on {machine}; best checkpoint at step {step}.
- **Measured (this checkpoint, greedy):**

{table}

- **Limits:** a first model trained on one collection of 19th-century English cursive in a CPU budget. It reads
  that hand only roughly, other hands and printed text poorly. A stronger default is the subject of the
  "default model" issue.
- **Licence and attribution:** trained on "Joseph Hooker HTR" (Schaefer & Litvine, 2023), CC-BY-SA 4.0, images
  © RBG Kew, reproduced with permission. These weights are shared under CC-BY-SA 4.0 with that attribution.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run", type=Path, help="benchmark run folder (best.safetensors + results.json)")
    args = ap.parse_args()
    src = args.run / "best.safetensors"
    meta = read_meta(src)
    results = json.loads((args.run / "results.json").read_text(encoding="utf-8"))
    dest_dir = Path(__file__).resolve().parents[1] / "src" / "htrlab" / "weights"
    dest_dir.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in load_file(str(src)).items()}
    training = dict(meta.training, source_run=str(args.run), stored_as="float16")
    meta = replace(meta, training=training)
    save_file(state, str(dest_dir / DEFAULT_MODEL), metadata={META_KEY: json.dumps(asdict(meta))})
    rows = ["| split | lines | CER % | WER % |", "|---|---:|---:|---:|"]
    rows += [
        f"| {r['split']} | {r['lines']} | {100 * r['cer']:.2f} | {100 * r['wer']:.2f} |"
        for r in results["results"]
    ]
    params = sum(v.numel() for v in state.values() if v.is_floating_point()) - sum(
        v.numel() for k, v in state.items() if "running" in k
    )
    card = CARD.format(
        name=DEFAULT_MODEL,
        model=meta.model_name,
        params=params,
        height=meta.preprocess["height"],
        train_lines=meta.data.get("train_lines"),
        command=results["command"],
        budget=results["budget_min"],
        machine=results["machine"],
        step=meta.training.get("step"),
        table="\n".join(rows),
    )
    (dest_dir / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    print(f"wrote {dest_dir / DEFAULT_MODEL} ({(dest_dir / DEFAULT_MODEL).stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
