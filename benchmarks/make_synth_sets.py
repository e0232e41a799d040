"""Synthetic training and held-out test sets for the default model: handwriting-font lines and printed/typed
lines, with whole font families held out of training so the test sets measure generalisation to unseen fonts.

    scripts/fetch_fonts.sh all
    python benchmarks/make_synth_sets.py --out runs/data --hand 3000 --printed 3000 --test 300

Writes OUT/synth-hand/{train,test}/<font>/*.png|.txt and OUT/synth-printed/{train,test}/... (folder datasets
whose train/ and test/ folders are their splits) and OUT/sets.json (fonts per set, counts, lines/s). When the
npm handwriting fonts are there (scripts/fetch_fonts.sh npm), OUT/synth-hand-npm/test holds lines in held-out
npm families too (the synth-hand test set keeps its Debian families, so its numbers stay comparable). Text: the
Brown corpus (../shared/data/text/brown.txt); test sets use a different seed range than training sets, so
their sentences are drawn independently (the corpus is shared; a test line may repeat a training sentence).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from htrlab.synth import find_fonts, generate, load_corpus
from htrlab.synth.render import SynthConfig, font_dirs, printed_config

# Whole Debian packages (font families) held out of training.
HELD_OUT_HAND = ("fonts-kristi", "fonts-femkeklaver", "fonts-sjfonts", "fonts-joscelyn")
# Whole npm @fontsource families held out of training (print, joined school, casual and formal hands).
HELD_OUT_HAND_NPM = (
    "npm-indie-flower",
    "npm-homemade-apple",
    "npm-edu-sa-beginner",
    "npm-la-belle-aurore",
    "npm-playwrite-us-trad",
    "npm-reenie-beanie",
    "npm-dr-sugiyama",
)
HELD_OUT_PRINTED = ("fonts-crosextra-caladea", "fonts-courier-prime", "fonts-go", "fonts-open-sans")
# symbol, dingbat and decorative fonts whose glyphs are not Latin text
NOT_TEXT = ("Symbol", "Dingbat", "D050000L", "Z003", "Chorus")


def _printed_dir() -> Path:
    import os

    return Path(os.environ.get("HTRLAB_PRINTED_FONTS", Path.home() / ".local/share/htrlab/printed-fonts"))


def _split_fonts(root: Path, held_out: tuple[str, ...], also_out: tuple[str, ...] = ()) -> tuple[list, list]:
    """Training fonts (in neither held-out tuple) and test fonts (in ``held_out``) under ``root``."""
    fonts = [f for f in find_fonts([root]) if not any(x in f.path.name for x in NOT_TEXT)]
    test = [f for f in fonts if f.path.parent.name in held_out]
    train = [f for f in fonts if f.path.parent.name not in held_out + also_out]
    if not test or not train:
        raise SystemExit(f"{root}: need fonts both in and out of {held_out}; run scripts/fetch_fonts.sh all")
    return train, test


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/data")
    ap.add_argument("--hand", type=int, default=3000, help="handwriting-font training lines")
    ap.add_argument("--printed", type=int, default=3000, help="printed/typed training lines")
    ap.add_argument("--test", type=int, default=300, help="lines in each held-out test set")
    ap.add_argument("--text", default="../shared/data/text/brown.txt")
    ap.add_argument("--test-only", action="store_true", help="(re)write only the held-out test sets")
    args = ap.parse_args()
    corpus = load_corpus([args.text])
    out = Path(args.out)
    report: dict[str, object] = {"date": time.strftime("%Y-%m-%d"), "corpus": args.text}
    hand_dir = font_dirs()[-1]
    npm = any(hand_dir.glob("npm-*"))
    jobs = [
        ("synth-hand", hand_dir, HELD_OUT_HAND, HELD_OUT_HAND_NPM, SynthConfig(), args.hand, 1),
        ("synth-printed", _printed_dir(), HELD_OUT_PRINTED, (), printed_config(), args.printed, 2),
    ]
    if npm:  # a second held-out handwriting set; 0 training lines (the npm fonts train in synth-hand)
        jobs.append(("synth-hand-npm", hand_dir, HELD_OUT_HAND_NPM, HELD_OUT_HAND, SynthConfig(), 0, 3))
    for name, root, held_out, also_out, cfg, n_train, seed in jobs:
        train_fonts, test_fonts = _split_fonts(root, held_out, also_out)
        tr = (
            {"written": 0, "seconds": 0.0, "lines_per_s": 0.0}
            if args.test_only or n_train == 0
            else generate(n_train, out / name / "train", train_fonts, corpus, seed, cfg, progress=False)
        )
        # test lines use other sample indices, so other sentences and renderings than the training lines
        te = generate(
            args.test, out / name / "test", test_fonts, corpus, seed, cfg, start=10**6, progress=False
        )
        report[name] = {
            "train_fonts": sorted(f.name for f in train_fonts),
            "test_fonts": sorted(f.name for f in test_fonts),
            "train": tr,
            "test": te,
        }
        print(
            f"{name}: {tr['written']} train lines ({len(train_fonts)} fonts), {te['written']} test lines "
            f"({len(test_fonts)} held-out fonts), {tr['lines_per_s']} lines/s"
        )
    (out / ("sets-test.json" if args.test_only else "sets.json")).write_text(
        json.dumps(report, indent=2), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
