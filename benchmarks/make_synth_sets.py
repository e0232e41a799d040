"""Synthetic training and held-out test sets for the default model: handwriting-font lines and printed/typed
lines, with whole font families held out of training so the test sets measure generalisation to unseen fonts.

    scripts/fetch_fonts.sh all
    python benchmarks/make_synth_sets.py --out runs/data --hand 1200 --printed 800 --test 300

Writes OUT/synth-hand/{train,test}/<font>/*.png|.txt and OUT/synth-printed/{train,test}/... (folder datasets
whose train/ and test/ folders are their splits) and OUT/sets.json (fonts per set, counts, lines/s). When the
npm handwriting fonts are there (scripts/fetch_fonts.sh npm), OUT/synth-hand-npm/test holds lines in held-out
npm families too (the synth-hand test set keeps its Debian families, so its numbers stay comparable).

Text: training lines come from the public-domain books (../shared/data/text/pd/, free to ship in weights),
the held-out test sets from the Brown corpus (experiments only, never shipped; kept so that test numbers stay
comparable with earlier ones). Training lines are cut as page lines are (``SynthConfig.crop_styles``: ink box,
outline, box or band with neighbouring lines reaching in); test lines keep the fixed margin they always had
(``--test-crop-styles`` cuts them the same way).
"""

from __future__ import annotations

import argparse
import glob
import json
import time
import unicodedata
from dataclasses import replace
from pathlib import Path

from htrlab.synth import find_fonts, generate, load_corpus
from htrlab.synth.render import SynthConfig, font_dirs, printed_config
from htrlab.text.normalize import fold_typography

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


def fit_charset(text: str, allowed: set[str]) -> str:
    """``text`` in the characters of ``allowed``: typographic quotes and dashes folded to ASCII, accents dropped
    from letters ``allowed`` lacks in either case (capitals-only fonts write the text upper-cased), other
    characters left out."""
    out = []
    for c in fold_typography(text):
        if c == " " or {c, c.upper(), c.lower()} <= allowed:
            out.append(c)
        else:
            base = unicodedata.normalize("NFKD", c)
            out.append("".join(b for b in base if b in allowed and not unicodedata.combining(b)))
    return " ".join("".join(out).split())


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
    ap.add_argument("--text", nargs="+", default=sorted(glob.glob("../shared/data/text/pd/*.txt")))
    ap.add_argument("--test-text", nargs="+", default=["../shared/data/text/brown.txt"])
    ap.add_argument(
        "--charset-of",
        default="default",
        help="write training text in this model's characters (curly quotes straightened, accents dropped "
        "from letters it lacks): fine-tuning it then adds no output rows; '' keeps the text as it is",
    )
    ap.add_argument("--no-crop-styles", action="store_true", help="training lines with the fixed margin")
    ap.add_argument("--test-crop-styles", action="store_true", help="cut test lines as training lines")
    ap.add_argument("--test-only", action="store_true", help="(re)write only the held-out test sets")
    args = ap.parse_args()
    corpus = [] if args.test_only else load_corpus(args.text)
    if corpus and args.charset_of:
        from htrlab.read.engines import load_engine

        allowed = set(load_engine(args.charset_of, "auto", 1).charset.symbols)
        corpus = [t for t in (fit_charset(x, allowed) for x in corpus) if t]
    test_corpus = load_corpus(args.test_text)
    out = Path(args.out)
    report: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "corpus": args.text,
        "test_corpus": args.test_text,
        "crop_styles": not args.no_crop_styles,
        "test_crop_styles": args.test_crop_styles,
    }
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
            else generate(
                n_train,
                out / name / "train",
                train_fonts,
                corpus,
                seed,
                replace(cfg, crop_styles=not args.no_crop_styles),
                progress=False,
            )
        )
        # test lines use other sample indices, so other sentences and renderings than the training lines
        test_cfg = replace(cfg, crop_styles=args.test_crop_styles)
        te = generate(
            args.test,
            out / name / "test",
            test_fonts,
            test_corpus,
            seed,
            test_cfg,
            start=10**6,
            progress=False,
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
