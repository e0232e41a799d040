"""Word and neural LMs in beam search, and N-best rescoring with a causal LM: each can fix the ambiguous
"the hat" / "the cat" reading, a zero weight changes nothing, and the decoder names and tuned settings are
checked by the command line."""

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
from htrlab.lm.neural import CharLSTMLM
from htrlab.lm.word import WordNgram, build_word_ngram, word_key
from htrlab.text.charset import Charset
from htrlab.train.charlm import train_char_lm

TEXT = ["the cat sat on the mat", "the cat ate", "a cat and a dog", "that is the cat", "the red hat"]
CS = Charset(list(" acdehmorst"))
AMBIGUOUS = [{"t": 0.9}, {"h": 0.9}, {"e": 0.9}, {" ": 0.9}, {"h": 0.55, "c": 0.45}, {"a": 0.9}, {"t": 0.9}]


def _emissions(cs: Charset, frames: list[dict[str, float]]) -> np.ndarray:
    rows = []
    for f in frames:
        v = np.full(len(cs), 1e-4)
        for k, p in f.items():
            v[cs.encode(k)[0]] = p
        rows.append(np.log(v / v.sum()))
    return np.stack(rows).astype(np.float32)


def _random_emissions(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        torch.log_softmax(torch.tensor(rng.normal(0, 2, (20, len(CS))), dtype=torch.float32), -1).numpy()
        for _ in range(4)
    ]


def test_word_key_folds_case_and_strips_punctuation() -> None:
    assert word_key("Kew,") == "kew"
    assert word_key("(literally") == "literally"
    assert word_key("&") == "and"
    assert word_key("don't") == "don't"
    assert word_key("1845.") is None and word_key("--") is None


def test_word_ngram_reads_back_the_estimated_probabilities(tmp_path: Path) -> None:
    facts = build_word_ngram([*TEXT, "The CAT, sat."], tmp_path / "w.arpa")
    assert facts["vocabulary"] >= 10
    arpa = (tmp_path / "w.arpa").read_text()
    stated = {}
    section = 0
    for line in arpa.splitlines():
        if line.startswith("\\") and "-grams" in line:
            section = int(line[1])
        elif section and line.strip() and not line.startswith("\\"):
            parts = line.split()
            stated[tuple(parts[1 : 1 + section])] = float(parts[0])
    lm = WordNgram(tmp_path / "w.arpa", oov_score=-7.5, other_log10=-2.0)
    assert lm.order == 3
    assert math.isclose(lm.log10_prob("cat", ["the"]), stated[("the", "cat")], abs_tol=2e-3)
    assert math.isclose(lm.log10_prob("the"), stated[("the",)], abs_tol=2e-3)
    assert lm.log10_prob("zebra", ["the"]) == -7.5
    assert lm.score_token("1845", []) == (-2.0, None)
    assert lm.log10_text("The cat") > lm.log10_text("The hat")


def test_cmu_word_lm_prefers_english(tmp_path: Path) -> None:
    lm = WordNgram("cmu", oov_score=-6.0)
    assert lm.log10_text("I went to the house") > lm.log10_text("I want to tho hoose")
    assert lm.log10_prob("of", ["most"]) > lm.log10_prob("of", ["the"])


def _fixes_and_weight_zero_is_neutral(make: Any, seed: int) -> None:
    """``make(weight)`` -> a fused decoder: weight 1 reads "the cat", weight 0 equals plain beam search."""
    lp = _emissions(CS, AMBIGUOUS)
    plain = BeamDecoder(CS, BeamConfig(beam_size=8))
    assert plain.decode_one(lp)[0][0] == "the hat"
    assert make(1.0).decode_one(lp)[0][0] == "the cat"
    zero = make(0.0)
    for x in _random_emissions(seed):
        (a, sa), (b, sb) = plain.decode_one(x)[0], zero.decode_one(x)[0]
        assert a == b and math.isclose(sa, sb, abs_tol=1e-4)


def test_word_lm_fixes_the_reading_and_weight_zero_changes_nothing(tmp_path: Path) -> None:
    build_word_ngram(TEXT * 3, tmp_path / "w.arpa")
    lm = WordNgram(tmp_path / "w.arpa", oov_score=-6.0)
    _fixes_and_weight_zero_is_neutral(
        lambda w: BeamDecoder(CS, BeamConfig(beam_size=8, word_lm_weight=w), word_lm=lm), seed=1
    )


@pytest.fixture(scope="module")
def tiny_neural_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nlm") / "lm.safetensors"
    rep = train_char_lm(
        TEXT * 20, out, TEXT[:2], max_steps=150, hidden=48, emb=16, batch=16, seq=32, log=None
    )
    assert rep.steps == 150 and rep.val_bits_per_char is not None
    return out


def test_neural_lm_learns_saves_and_loads(tiny_neural_lm: Path) -> None:
    lm = CharLSTMLM.load(tiny_neural_lm)
    assert lm.log10_prob("the cat sat") > lm.log10_prob("tsh eac ta") + 3
    # stepping through the cursor gives the same probabilities as the whole-line pass
    cur, total = lm.start(), 0.0
    for ch in "the cat":
        idx = lm.index[ch]
        total += float(cur.dist()[idx])
        cur = cur.child(idx)
    total += float(cur.dist()[lm.index["\n"]])
    assert math.isclose(total, lm.log10_prob("the cat"), abs_tol=1e-4)


def test_neural_lm_fixes_the_reading_and_weight_zero_changes_nothing(tiny_neural_lm: Path) -> None:
    lm = CharLSTMLM.load(tiny_neural_lm)
    _fixes_and_weight_zero_is_neutral(
        lambda w: BeamDecoder(CS, BeamConfig(beam_size=8, neural_lm_weight=w), neural_lm=lm), seed=2
    )


def test_neural_lm_file_errors(tmp_path: Path) -> None:
    from htrlab.errors import CheckpointError

    with pytest.raises(CheckpointError, match="missing.safetensors not found"):
        CharLSTMLM.load(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        CharLSTMLM.load(bad)


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A character-level GPT-2 with a tokenizer, trained a little on TEXT and saved like a hub checkpoint."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    chars = sorted(set("".join(TEXT)))
    vocab = {"<|endoftext|>": 0, "<unk>": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|endoftext|>", unk_token="<unk>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_positions=64, n_embd=32, n_layer=1, n_head=2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ids = [torch.tensor([0, *[vocab[c] for c in t]]) for t in TEXT]
    for _ in range(60):
        for x in ids:
            loss = model(input_ids=x[None], labels=x[None]).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    out = tmp_path_factory.mktemp("causal") / "tiny-lm"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_causal_lm_scores_and_rescoring(tiny_causal_lm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from htrlab.decoding.rescore import CausalLMScorer, RescoreConfig, RescoreDecoder, choose

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sc = CausalLMScorer(str(tiny_causal_lm), batch_size=2)
    a, b, empty = sc.log10_probs(["the cat", "the hat", ""])
    assert a > b and empty == 0.0
    # the batched, padded score equals a direct sum of token log-probabilities
    ids = torch.tensor([[sc.start_id, *sc.tok("the cat", add_special_tokens=False).input_ids]])
    with torch.no_grad():
        lp = torch.log_softmax(sc.model(input_ids=ids).logits[0, :-1], -1)
    direct = float(lp[torch.arange(ids.shape[1] - 1), ids[0, 1:]].sum()) / math.log(10)
    assert math.isclose(a, direct, abs_tol=1e-4)
    # choose: the length bonus counters the LLM's preference for short strings
    cands = [("the cat", -1.0), ("the ca", -1.0)]
    assert choose(cands, [-3.0, -2.0], 1.0, 0.0) == 1 and choose(cands, [-3.0, -2.0], 1.0, 2.0) == 0
    lp_amb = torch.tensor(_emissions(CS, AMBIGUOUS))[None]
    n = torch.tensor([len(AMBIGUOUS)])
    beam = BeamDecoder(CS, BeamConfig(beam_size=8))
    plain = RescoreDecoder(beam, sc, RescoreConfig(nbest=4, rescore_weight=0.0, length_bonus=0.0))
    assert plain(lp_amb, n)[0].text == "the hat"  # weight 0: the beam's best
    assert (
        RescoreDecoder(beam, sc, RescoreConfig(nbest=4, rescore_weight=2.0))(lp_amb, n)[0].text == "the cat"
    )
    with pytest.raises(Exception, match="no such directory"):
        CausalLMScorer(str(tiny_causal_lm / "missing"))


def test_causal_lm_scores_a_line_as_the_continuation_of_the_previous_one(
    tiny_causal_lm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from htrlab.decoding.rescore import (
        CausalLMScorer,
        RescoreConfig,
        RescoreDecoder,
        previous_line_contexts,
        rescore_in_order,
    )

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sc = CausalLMScorer(str(tiny_causal_lm), batch_size=3)
    (plain,) = sc.log10_probs(["hat"])
    with_ctx, again = sc.log10_probs(["hat", "hat"], ["the red", "the red"])
    assert with_ctx == again and with_ctx != plain  # cached per (context, text)
    # only the text's own tokens count: the direct sum over " hat" after "<start> the red"
    head = [sc.start_id, *sc.tok("the red", add_special_tokens=False).input_ids]
    body = sc.tok(" hat", add_special_tokens=False).input_ids
    ids = torch.tensor([head + body])
    with torch.no_grad():
        lp = torch.log_softmax(sc.model(input_ids=ids).logits[0, :-1], -1)
    pos = torch.arange(len(head) - 1, ids.shape[1] - 1)
    direct = float(lp[pos, ids[0, len(head) :]].sum()) / math.log(10)
    assert math.isclose(with_ctx, direct, abs_tol=1e-4)
    with pytest.raises(ValueError, match="contexts"):
        sc.log10_probs(["a", "b"], ["x"])
    assert previous_line_contexts(["a", "b", "c", "d"], ["p1", "p1", "p2", "p2"]) == ["", "a", "", "c"]
    # every line its own document: no context, the same readings as the batch decoder
    lp_amb = torch.tensor(_emissions(CS, AMBIGUOUS))
    beam = BeamDecoder(CS, BeamConfig(beam_size=8))
    rd = RescoreDecoder(beam, sc, RescoreConfig(nbest=4, rescore_weight=2.0))
    alone = rescore_in_order(rd, [lp_amb, lp_amb], ["d1", "d2"])
    batch = rd(torch.stack([lp_amb, lp_amb]), torch.tensor([len(AMBIGUOUS)] * 2))
    assert [d.text for d in alone] == [d.text for d in batch]
    assert [round(d.confidence, 6) for d in alone] == [round(d.confidence, 6) for d in batch]


def test_decoder_names_and_tuned_settings_on_the_command_line(
    tiny_checkpoint: tuple[Path, Path],
    tiny_causal_lm: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ckpt, data = tiny_checkpoint
    text = tmp_path / "text.txt"
    text.write_text("\n".join(TEXT) + "\n", encoding="utf-8")
    word = tmp_path / "w.arpa"
    assert main(["lm", "build", "--unit", "word", "--text", str(text), "-o", str(word)]) == 0
    assert json.loads(capsys.readouterr().out)["unit"] == "word"
    ev = ["evaluate", str(ckpt), str(data), "--splits", "val", "--json"]
    assert main([*ev, "--decoder", "beam+word", "--word-lm", str(word)]) == 0
    assert json.loads(capsys.readouterr().out)
    assert main([*ev, "--decoder", "beam+word"]) == 2  # no --word-lm
    assert main([*ev, "--decoder", "beam+char", "--word-lm", str(word)]) == 2  # an LM the decoder ignores
    assert main([*ev, "--decoder", "greedy+word", "--word-lm", str(word)]) == 2
    assert main([*ev, "--decoder", "bean"]) == 2
    rescore = ["--decoder", "rescore", "--rescore-lm", str(tiny_causal_lm), "--nbest", "3"]
    assert main([*ev, *rescore]) == 0
    capsys.readouterr()
    tuned = tmp_path / "tuned.json"
    tune = ["lm", "tune", str(ckpt), str(data), "--decoder", "beam+word", "--word-lm", str(word)]
    assert main([*tune, "--grid", "word_lm_weight=0,0.5", "--grid", "oov_score=-4,-8", "-o", str(tuned)]) == 0
    doc = json.loads(tuned.read_text())
    assert len(doc["grid"]) == 4 and doc["settings"]["decoder"] == "beam+word"
    assert doc["settings"]["word_lm_weight"] in (0.0, 0.5)
    capsys.readouterr()
    assert main([*ev, "--decoding", str(tuned)]) == 0  # the tuned decoder and its settings
    assert json.loads(capsys.readouterr().out)
    assert main([*tune, "--grid", "nonsense=1", "-o", str(tuned)]) == 2


def test_char_lm_fusion_in_trocr_search(tmp_path: Path) -> None:
    from htrlab.decoding.seq2seq_lm import CharLMFusion
    from htrlab.lm.ngram import build_char_ngram
    from htrlab.models import build_model
    from htrlab.models.trocr import OFFSET

    arpa = build_char_ngram(TEXT * 3, order=4).write_arpa(tmp_path / "lm.arpa")
    torch.manual_seed(0)
    model = build_model("trocr-small", len(CS), tiny=True).eval()
    texts = model.token_texts(CS)
    assert texts[: OFFSET + 1] == ["", "", ""] and texts[CS.encode("c")[0] + OFFSET] == "c"
    # the processor alone: after "the ", equal model scores for c and h; the LM prefers "the c"
    fusion = CharLMFusion(arpa, texts, model.eos, weight=1.0, top_k=len(texts))
    prefix = [1, *[CS.encode(ch)[0] + OFFSET for ch in "the "]]
    scores = torch.zeros(1, len(texts))
    out = fusion(torch.tensor([prefix]), scores)
    c, h = CS.encode("c")[0] + OFFSET, CS.encode("h")[0] + OFFSET
    assert out[0, c] > out[0, h]
    assert torch.equal(
        CharLMFusion(arpa, texts, model.eos, weight=0.0)(torch.tensor([prefix]), scores), scores
    )
    # inside generate: weight 0 changes nothing; a strong LM changes what is read
    s = model.cfg.input_height
    images = torch.rand(2, 1, s, s)
    plain = model.generate(images, CS, num_beams=3)[0]
    zero = model.generate(
        images, CS, num_beams=3, logits_processor=[CharLMFusion(arpa, texts, model.eos, 0.0)]
    )[0]
    assert plain == zero
    strong = model.generate(
        images, CS, num_beams=3, logits_processor=[CharLMFusion(arpa, texts, model.eos, 50.0)]
    )
    assert all(set(t) <= set("".join(TEXT)) for t in strong[0])
    # through predict(): a beam decoder's size and character LM carry over to the autoregressive search
    from htrlab.errors import ConfigError
    from htrlab.read.predict import predict

    arrays = [np.random.default_rng(i).random((s, s)).astype(np.float32) for i in range(2)]
    fused = predict(model, CS, arrays, decoder=BeamDecoder(CS, BeamConfig(beam_size=2, lm_weight=50.0), arpa))
    assert len(fused) == 2 and all(set(d.text) <= set("".join(TEXT)) for d in fused)
    build_word_ngram(TEXT, tmp_path / "w.arpa")
    word = BeamDecoder(
        CS, BeamConfig(word_lm_weight=1.0), word_lm=WordNgram(tmp_path / "w.arpa", oov_score=-6.0)
    )
    with pytest.raises(ConfigError, match="character n-gram"):
        predict(model, CS, arrays, decoder=word)
