"""Language models and beam search: the estimator is a proper distribution that KenLM reads back exactly, an LM
weight of zero changes nothing, and an LM fixes a visually ambiguous reading."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from htrlab.cli.main import main
from htrlab.decoding.beam import BeamConfig, BeamDecoder
from htrlab.decoding.greedy import greedy_decode
from htrlab.errors import ConfigError, DataError
from htrlab.lm.ngram import BOS, EOS, build_char_ngram, to_tokens
from htrlab.text.charset import Charset

TEXT = ["the cat sat on the mat", "the cat ate", "a cat and a dog", "that is the cat", "the red hat"]


def test_kneser_ney_is_normalised_for_every_history() -> None:
    lm = build_char_ngram(TEXT, order=4)
    for h in ["", BOS, BOS + "th", "the|", "cat", "zzz", "|c"]:
        assert math.isclose(sum(lm.prob(h, w) for w in lm.vocab), 1.0, abs_tol=1e-9), h
    assert EOS in lm.vocab and BOS not in lm.vocab


def test_kneser_ney_by_hand_on_a_tiny_corpus() -> None:
    # "ab" and "b": unigram continuation counts a:1 (after <s>), b:2 (after a, after <s>), </s>:1 (after b)
    lm = build_char_ngram(["ab", "b"], order=2)
    d1 = 0.5  # no count of 2 among {1, 2, 1}: n1 = 2, n2 = 1 -> D = 2 / (2 + 2) = 0.5
    total, types = 4, 3
    gamma = d1 * types / total
    assert math.isclose(lm.prob("", "b"), (2 - d1) / total + gamma / 3)
    assert math.isclose(lm.prob("", "a"), (1 - d1) / total + gamma / 3)


def test_arpa_read_by_kenlm_gives_the_same_probabilities(tmp_path: Path) -> None:
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    lm = build_char_ngram(TEXT, order=5)
    arpa = lm.write_arpa(tmp_path / "lm.arpa")
    vocab = Dictionary()
    for t in lm.vocab:
        vocab.add_entry("</s>" if t == EOS else t)
    vocab.add_entry("<unk>")
    kenlm = KenLM(str(arpa), vocab)
    for text in ["the cat", "a dog sat", "xyz"]:  # seen, unseen combinations, out-of-vocabulary
        state, hist = kenlm.start(False), BOS
        for ch in to_tokens(text):
            state, score = kenlm.score(state, vocab.get_index(ch if ch in lm.vocab else "<unk>"))
            assert math.isclose(score, math.log10(lm.prob(hist, ch)), abs_tol=1e-4), (text, ch)
            hist += ch
        _, end = kenlm.finish(state)
        assert math.isclose(end, math.log10(lm.prob(hist, EOS)), abs_tol=1e-4)


def test_bad_lm_input_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="no text"):
        build_char_ngram(["", "  "])
    with pytest.raises(ConfigError, match="order"):
        build_char_ngram(TEXT, order=0)


def _emissions(cs: Charset, frames: list[dict[str, float]]) -> torch.Tensor:
    rows = []
    for f in frames:
        v = np.full(len(cs), 1e-4)
        for k, p in f.items():
            v[0 if k == "<b>" else cs.encode(k)[0]] = p
        rows.append(np.log(v / v.sum()))
    return torch.tensor(np.stack(rows), dtype=torch.float32)


CS = Charset(list(" acdehmorst"))
# "the ?at": the fifth frame looks slightly more like h than c
AMBIGUOUS = [{"t": 0.9}, {"h": 0.9}, {"e": 0.9}, {" ": 0.9}, {"h": 0.55, "c": 0.45}, {"a": 0.9}, {"t": 0.9}]


def test_beam_without_lm_agrees_with_greedy_on_a_clear_case() -> None:
    lp = _emissions(CS, AMBIGUOUS)
    greedy = greedy_decode(lp[None], torch.tensor([len(AMBIGUOUS)]), CS)[0].text
    assert greedy == "the hat"
    assert BeamDecoder(CS, BeamConfig(beam_size=8)).decode_one(lp.numpy())[0][0] == "the hat"


def test_lm_fixes_the_ambiguous_reading_and_weight_zero_changes_nothing(tmp_path: Path) -> None:
    arpa = build_char_ngram(TEXT, order=4).write_arpa(tmp_path / "lm.arpa")
    lp = _emissions(CS, AMBIGUOUS).numpy()
    with_lm = BeamDecoder(CS, BeamConfig(beam_size=8, lm_weight=1.0), arpa).decode_one(lp)[0][0]
    assert with_lm == "the cat"
    rng = np.random.default_rng(0)
    plain = BeamDecoder(CS, BeamConfig(beam_size=8))
    zero = BeamDecoder(CS, BeamConfig(beam_size=8, lm_weight=0.0, word_score=0.0), arpa)
    for _ in range(5):
        x = torch.log_softmax(torch.tensor(rng.normal(0, 2, (20, len(CS))), dtype=torch.float32), -1).numpy()
        (a, sa), (b, sb) = plain.decode_one(x)[0], zero.decode_one(x)[0]
        assert a == b and math.isclose(sa, sb, abs_tol=1e-4)


def test_cli_lm_build_and_evaluate_with_beam_lm(
    tiny_checkpoint: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, data = tiny_checkpoint
    text = tmp_path / "text.txt"
    text.write_text("\n".join(TEXT) + "\n", encoding="utf-8")
    arpa = tmp_path / "lm.arpa"
    args = ["lm", "build", "--order", "3", "--text", str(text), "--dataset", str(data), "-o", str(arpa)]
    assert main([*args, "--model", str(ckpt)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ngrams"][0] > 0 and arpa.is_file()
    assert "lm_chars_not_in_model" in report  # out-of-charset LM characters are reported
    assert main(["lm", "build", "--dataset", str(data), "--splits", "train,test", "-o", str(arpa)]) == 2
    for extra in (["--decoder", "beam"], ["--decoder", "beam+lm", "--lm", str(arpa), "--lm-weight", "0.3"]):
        assert main(["evaluate", str(ckpt), str(data), "--splits", "val", "--json", *extra]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert rows
    assert main(["evaluate", str(ckpt), str(data), "--decoder", "beam+lm"]) == 2  # no --lm
    tuned = tmp_path / "tuned.json"
    tune = ["lm", "tune", str(ckpt), str(data), "--lm", str(arpa), "--alphas", "0,0.5", "--betas", "0,1"]
    assert main([*tune, "-o", str(tuned)]) == 0
    doc = json.loads(tuned.read_text())
    assert len(doc["grid"]) == 4 and doc["split"] == "val"
    assert doc["cer"] == min(g["cer"] for g in doc["grid"])
    assert main([*tune, "--split", "test", "-o", str(tuned)]) == 2


def test_pruned_lm_is_normalised_smaller_and_read_by_kenlm(tmp_path: Path) -> None:
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    text = TEXT * 3 + ["the hat", "a red cat", "that dog"]
    full, pruned = build_char_ngram(text, order=5), build_char_ngram(text, order=5, prune=4)
    assert [len(p) for p in pruned.probs[:2]] == [len(p) for p in full.probs[:2]]  # orders 1-2 kept whole
    assert all(len(p) < len(q) for p, q in zip(pruned.probs[2:], full.probs[2:]))
    for h in ["", BOS, BOS + "th", "the|", "cat", "zzz", "|c", "dog"]:
        assert math.isclose(sum(pruned.prob(h, w) for w in pruned.vocab), 1.0, abs_tol=1e-9), h
    arpa = pruned.write_arpa(tmp_path / "lm.arpa.gz")
    assert arpa.read_bytes()[:2] == b"\x1f\x8b"  # gzipped, which KenLM reads
    vocab = Dictionary()
    for t in pruned.vocab:
        vocab.add_entry("</s>" if t == EOS else t)
    vocab.add_entry("<unk>")
    kenlm = KenLM(str(arpa), vocab)
    state, hist = kenlm.start(False), BOS
    for ch in to_tokens("a red dog"):
        state, score = kenlm.score(state, vocab.get_index(ch))
        assert math.isclose(score, math.log10(pruned.prob(hist, ch)), abs_tol=1e-4), ch
        hist += ch
    with pytest.raises(ConfigError, match="prune"):
        build_char_ngram(text, order=3, prune=-1)


def test_lm_build_reproduces_its_file_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    book = tmp_path / "book.txt"
    para = "\u201cThe cat sat on the mat,\u201d she wrote \u2014 and the dog sat by the door of the house. "
    book.write_text((para * 3 + "\n") * 4, encoding="utf-8")
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name / "lm.arpa.gz"
        args = [
            "lm",
            "build",
            "--order",
            "4",
            "--prune",
            "2",
            "--wrap",
            "30",
            "--text",
            str(book),
            "-o",
            str(out),
        ]
        assert main(args) == 0
        report = json.loads(capsys.readouterr().out)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert report["prune"] == 2 and report["lines"] == 4 * 9  # each paragraph cut into 9 lines of <= 30 chars
    import gzip

    arpa = gzip.decompress(outs[0]).decode()
    assert "\u201c" not in arpa and "\u2014" not in arpa and '\t"' in arpa  # typographic quotes folded


def _decoder_args(*argv: str) -> Any:
    import argparse

    from htrlab.cli.common import add_decoder_options

    p = argparse.ArgumentParser()
    p.add_argument("-m", "--model", default=None)
    add_decoder_options(p)
    return p.parse_args(list(argv))


def test_auto_decoder_uses_the_bundled_lm_for_the_default_model_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_checkpoint: tuple[Path, Path]
) -> None:
    from htrlab import bundled
    from htrlab.cli.common import make_decoder

    arpa = build_char_ngram(TEXT, order=4).write_arpa(tmp_path / "lm.arpa.gz")
    settings = {"decoder": "beam+lm", "lm": str(arpa), "lm_weight": 1.0, "word_score": 0.0, "beam_size": 16}
    monkeypatch.setattr(bundled, "default_decoding", lambda: dict(settings))
    lp = _emissions(CS, AMBIGUOUS)
    dec, _ = make_decoder(_decoder_args(), CS)  # default model, nothing asked: the bundled beam + LM
    assert isinstance(dec, BeamDecoder) and dec.decode_one(lp.numpy())[0][0] == "the cat"
    assert make_decoder(_decoder_args("--decoder", "greedy"), CS)[0] is None  # one option away
    args = _decoder_args("--lm-weight", "0")  # an option the user sets wins over the bundled setting
    _, cfg = make_decoder(args, CS)
    assert cfg.lm_weight == 0.0 and cfg.lm == str(arpa) and cfg.beam_size == 16
    assert args.lm is None and args.decoder == "auto"  # the options are read, never rewritten
    _, cfg = make_decoder(_decoder_args("--beam-size", "8"), CS)  # ... even at the option's own default
    assert cfg.beam_size == 8
    ckpt, _ = tiny_checkpoint
    assert make_decoder(_decoder_args("-m", str(ckpt)), CS)[0] is None  # another model: greedy, as before
    other, _ = make_decoder(_decoder_args("-m", str(ckpt), "--lm", str(arpa)), CS)  # ... or beam + the LM
    assert isinstance(other, BeamDecoder)
    monkeypatch.setattr(bundled, "default_decoding", lambda: None)  # an installation without the LM
    assert make_decoder(_decoder_args(), CS)[0] is None


def test_a_broken_lm_file_is_a_one_line_error_and_kenlm_stays_quiet(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from htrlab.decoding.beam import lm_tokens, load_kenlm

    bad = tmp_path / "bad.arpa"
    bad.write_text("not an arpa file\n", encoding="utf-8")
    assert main(["recognize", "--decoder", "beam+lm", "--lm", str(bad)]) == 2
    err = capfd.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and "readable ARPA" in err
    good = build_char_ngram(TEXT, order=3).write_arpa(tmp_path / "lm.arpa.gz")
    load_kenlm(good, lm_tokens(CS))
    assert capfd.readouterr().err == ""  # KenLM's loader's progress bar and advice are silenced
