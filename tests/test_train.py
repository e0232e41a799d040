"""Training: a tiny model learns, runs resume exactly, and the loop runs under torchrun (gloo)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import set_args
from htrlab.data.dataset import open_dataset
from htrlab.errors import CheckpointError, ConfigError, DataError
from htrlab.evaluate.evaluator import evaluate_splits
from htrlab.models.checkpoint import load_checkpoint, read_meta
from htrlab.train.config import ExtraData
from htrlab.train.loop import load_run_config, train
from htrlab.train.state import load_state, save_state


def _cfg(dataset: Path, out: Path, *extra: str):
    return load_run_config(
        None,
        [
            f"data.dataset={dataset}",
            f"train.out_dir={out}",
            "model.tiny=true",
            "preprocess.height=32",
            "augment.enabled=false",
            "train.batch_size=4",
            "train.lr=3e-3",
            "train.warmup_steps=10",
            "train.progress=false",
            "train.log_every=5",
            "train.threads=1",
            "train.device=cpu",  # exact comparisons: CPU arithmetic is deterministic, cuDNN's is not
            *extra,
        ],
    )


@pytest.mark.parametrize("model", ["htr-jand", "vit-ctc"])
def test_tiny_model_overfits_four_lines_to_zero_cer(model: str, line_folder: Path, tmp_path: Path) -> None:
    """Each CTC architecture can learn at all (a 12-layer vit-ctc from scratch on Hooker stayed all-blank for
    25 CPU-minutes; this shows that is its from-scratch plateau, not a wiring fault)."""
    torch.manual_seed(0)
    cfg = _cfg(
        line_folder,
        tmp_path / "run",
        f"model.name={model}",
        "train.epochs=400",
        "train.eval_every=50",
        "train.patience=0",
        "train.max_steps=400",
        "train.schedule=constant",
        "data.val_split=train",
    )
    summary = train(cfg)
    loaded = load_checkpoint(tmp_path / "run" / "best.safetensors")
    res = evaluate_splits(loaded, line_folder, ["train"], progress=False)[0]
    assert res.lines == 4
    assert res.cer == 0.0, res.predictions
    assert summary["best_val_cer"] == 0.0
    assert (tmp_path / "run" / "curves.png").is_file()
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "eval" for r in rows) and any(r["kind"] == "train" for r in rows)


def test_checkpoint_describes_itself(line_folder: Path, tmp_path: Path) -> None:
    train(_cfg(line_folder, tmp_path / "run", "train.max_steps=3", "train.eval_every=3"))
    meta = read_meta(tmp_path / "run" / "best.safetensors")
    assert meta.model_name == "htr-jand"
    assert meta.preprocess["height"] == 32
    assert meta.charset == sorted(set("".join(["the cat sat", "on a mat", "dear sir", "kind regards"])))
    assert len(meta.data["train_fingerprints"]) == 4
    assert meta.training["config"]["train"]["max_steps"] == 3
    assert meta.htrlab_version


@pytest.mark.parametrize("ema", [0.0, 0.8])
def test_resume_continues_exactly(ema: float, line_folder: Path, tmp_path: Path) -> None:
    common = ("train.eval_every=4", "augment.enabled=true", f"train.ema={ema}")
    full = _cfg(line_folder, tmp_path / "full", "train.max_steps=8", *common)
    train(full)
    # a "killed" run: stops after 4 steps (max_steps), then resumes with the full step budget
    part = _cfg(line_folder, tmp_path / "part", "train.max_steps=4", *common)
    train(part)
    resumed = _cfg(line_folder, tmp_path / "part", "train.max_steps=8", *common)
    train(resumed, resume=True)
    a = load_checkpoint(tmp_path / "full" / "last.safetensors").model.state_dict()
    b = load_checkpoint(tmp_path / "part" / "last.safetensors").model.state_dict()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_worker_processes_make_the_same_batches(line_folder: Path, tmp_path: Path) -> None:
    """train.workers moves augmentation into DataLoader workers: the same run, to the last weight, including a
    resume in the middle of an epoch (4 training lines: two batches of 2 per epoch).

    Run in a fresh interpreter: forked after the rest of the suite has run in the same process (ONNX Runtime
    sessions, OpenVINO, subprocesses, ...), the workers' run ended in a segmentation fault of the whole test
    process on the 2-core machine (2026-12-05, also on the code of ef165e0; no Python traceback). A training run
    is its own process in use (`htrlab train`), which is what this checks."""
    if os.environ.get("HTRLAB_TEST_ISOLATED") != "1":
        test = f"{__file__}::test_worker_processes_make_the_same_batches"
        env = {**os.environ, "HTRLAB_TEST_ISOLATED": "1"}
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test]
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
        assert "1 passed" in r.stdout
        return
    common = ("train.eval_every=3", "augment.enabled=true", "train.batch_size=2", "train.epochs=3")
    train(_cfg(line_folder, tmp_path / "inline", "train.max_steps=5", *common))
    before = signal.getsignal(signal.SIGCHLD)
    train(_cfg(line_folder, tmp_path / "pool", "train.max_steps=3", "train.workers=2", *common))
    # the DataLoader's SIGCHLD handler is gone with its workers (left in place, a later subprocess's exit
    # crashed this test suite with a segmentation fault)
    assert signal.getsignal(signal.SIGCHLD) == before
    train(_cfg(line_folder, tmp_path / "pool", "train.max_steps=5", "train.workers=2", *common), resume=True)
    a = load_checkpoint(tmp_path / "inline" / "last.safetensors").model.state_dict()
    b = load_checkpoint(tmp_path / "pool" / "last.safetensors").model.state_dict()
    assert any(not torch.equal(a[k], torch.zeros_like(a[k])) for k in a)
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    with pytest.raises(ConfigError, match="train.workers"):
        _cfg(line_folder, tmp_path / "x", "train.workers=-1")


def test_bf16_autocast_trains(line_folder: Path, tmp_path: Path) -> None:
    """train.precision=bf16 runs the forward pass under torch.autocast (here on the CPU) and still learns."""
    torch.manual_seed(0)
    out = tmp_path / "run"
    cfg = _cfg(
        line_folder,
        out,
        "train.precision=bf16",
        "train.max_steps=120",
        "train.eval_every=40",
        "train.patience=0",
        "train.schedule=constant",
        "data.val_split=train",
    )
    summary = train(cfg)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    assert all(map(math.isfinite, losses)) and losses[-1] < 0.5 * losses[0]
    assert summary["best_val_cer"] < 0.9
    assert read_meta(out / "best.safetensors").training["config"]["train"]["precision"] == "bf16"
    with pytest.raises(ConfigError, match="train.precision"):
        _cfg(line_folder, out, "train.precision=fp16")


def test_ema_weights_are_validated_and_saved(line_folder: Path, tmp_path: Path) -> None:
    """With train.ema the checkpoints hold the averaged weights (not the last step's), the log has both CERs."""
    out = tmp_path / "run"
    train(_cfg(line_folder, out, "train.max_steps=6", "train.eval_every=3", "train.ema=0.5"))
    state = load_state(out / "last.state.safetensors")
    saved = load_checkpoint(out / "last.safetensors").model.state_dict()
    assert int(state["ema"]["n_averaged"]) == 6  # one update per step (the first one copies)
    averaged = {k.removeprefix("module."): v for k, v in state["ema"].items() if k.startswith("module.")}
    moved = 0
    for k, v in saved.items():
        assert torch.allclose(v.float(), averaged[k].float(), atol=1e-6), k
        moved += not torch.allclose(v.float(), state["model"][k].float())
    assert moved > 0  # the average lags the raw weights
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["kind"] == "eval"]
    assert len(evals) == 2 and all(r["val_cer_raw"] >= 0.0 for r in evals)
    with pytest.raises(ConfigError, match="train.ema"):
        _cfg(line_folder, out, "train.ema=1.0")


def test_resume_of_a_run_older_than_a_new_option(line_folder: Path, tmp_path: Path) -> None:
    """A run saved before an option existed resumes: the missing option counts as its default."""
    out = tmp_path / "run"
    train(_cfg(line_folder, out, "train.max_steps=2", "train.eval_every=2"))
    state = load_state(out / "last.state.safetensors")
    del state["config"]["train"]["ema"], state["config"]["augment"]["ref_height"]
    save_state(out / "last.state.safetensors", state)
    summary = train(_cfg(line_folder, out, "train.max_steps=4", "train.eval_every=2"), resume=True)
    assert summary["steps"] == 4
    with pytest.raises(ConfigError, match=r"train\.ema"):
        train(_cfg(line_folder, out, "train.max_steps=6", "train.eval_every=2", "train.ema=0.9"), resume=True)


def test_resume_with_changed_config_is_refused(line_folder: Path, tmp_path: Path) -> None:
    from htrlab.errors import ConfigError

    train(_cfg(line_folder, tmp_path / "run", "train.max_steps=2", "train.eval_every=2"))
    with pytest.raises(ConfigError, match=r"differs .* in train\.lr"):
        train(
            _cfg(line_folder, tmp_path / "run", "train.max_steps=2", "train.eval_every=2", "train.lr=0.1"),
            resume=True,
        )


def test_refused_resume_keeps_the_runs_config(line_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(_cfg(line_folder, out, "train.max_steps=2", "train.eval_every=2"))
    before = (out / "config.yaml").read_text()
    with pytest.raises(ConfigError):
        train(_cfg(line_folder, out, "train.max_steps=2", "train.eval_every=2", "train.lr=0.1"), resume=True)
    assert (out / "config.yaml").read_text() == before


def test_resume_logs_each_step_once(line_folder: Path, tmp_path: Path) -> None:
    """Steps logged after the last saved state (a run killed between validations) are redone, not doubled."""
    out = tmp_path / "run"
    train(_cfg(line_folder, out, "train.max_steps=4", "train.eval_every=2", "train.log_every=1"))
    state = load_state(out / "last.state.safetensors")
    state["progress"]["step"] = 2  # as if killed after step 4 was logged but before its state was saved
    state["progress"]["last_eval_step"] = 2
    save_state(out / "last.state.safetensors", state)
    train(_cfg(line_folder, out, "train.max_steps=4", "train.eval_every=2", "train.log_every=1"), resume=True)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 4


def test_resume_never_unpickles(line_folder: Path, tmp_path: Path) -> None:
    """A crafted pickle in the run folder is not loaded (it would run code); a broken state is one clear error."""
    out = tmp_path / "run"
    train(_cfg(line_folder, out, "train.max_steps=2", "train.eval_every=2"))
    good = (out / "last.state.safetensors").read_bytes()
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (out / "last.state.safetensors").unlink()
    torch.save({"x": Evil()}, out / "last.state.pt")
    with pytest.raises(CheckpointError, match=r"last\.state\.pt.*pickle"):
        train(_cfg(line_folder, out, "train.max_steps=4", "train.eval_every=2"), resume=True)
    (out / "last.state.pt").replace(out / "last.state.safetensors")  # a pickle under the new name
    with pytest.raises(CheckpointError, match="last.state.safetensors: unreadable training state"):
        train(_cfg(line_folder, out, "train.max_steps=4", "train.eval_every=2"), resume=True)
    (out / "last.state.safetensors").write_bytes(good[: len(good) // 2])  # truncated
    with pytest.raises(CheckpointError, match="last.state.safetensors: unreadable training state"):
        train(_cfg(line_folder, out, "train.max_steps=4", "train.eval_every=2"), resume=True)
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(out / "last.state.safetensors"))  # foreign safetensors
    with pytest.raises(CheckpointError, match="not an htrlab training state"):
        train(_cfg(line_folder, out, "train.max_steps=4", "train.eval_every=2"), resume=True)
    assert not marker.exists()


def test_state_round_trip_keeps_types(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    state = {
        "opt": {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.ones(2, 2)}},
            "groups": [{"betas": (0.9, 0.99)}],
        },
        "best": math.inf,
        "rng": rng.bit_generator.state,
        "name": "x",
        "none": None,
    }
    save_state(tmp_path / "s.safetensors", state)
    back = load_state(tmp_path / "s.safetensors")
    assert back["opt"]["groups"][0]["betas"] == (0.9, 0.99) and 0 in back["opt"]["state"]
    assert torch.equal(back["opt"]["state"][0]["exp_avg"], torch.ones(2, 2)) and back["best"] == math.inf
    again = np.random.default_rng()
    again.bit_generator.state = back["rng"]
    assert again.integers(1 << 30) == rng.integers(1 << 30)
    assert back["name"] == "x" and back["none"] is None


def test_existing_run_is_not_overwritten(line_folder: Path, tmp_path: Path) -> None:
    from htrlab.errors import ConfigError

    train(_cfg(line_folder, tmp_path / "run", "train.max_steps=2", "train.eval_every=2"))
    with pytest.raises(ConfigError, match="already holds a run"):
        train(_cfg(line_folder, tmp_path / "run", "train.max_steps=2", "train.eval_every=2"))


def test_too_narrow_line_names_sample_and_min_width(tmp_path: Path) -> None:
    from conftest import render_line, save_png
    from htrlab.errors import DataError

    root = tmp_path / "d"
    for split in ("train", "val"):
        save_png(render_line("ab"), root / split / "narrow.png")
        (root / split / "narrow.txt").write_text("a very long text for such a tiny image")
    with pytest.raises(DataError, match=r"narrow.*minimum width \d+ px"):
        train(_cfg(root, tmp_path / "run", "train.max_steps=1"))


@pytest.mark.slow
def test_distributed_two_cpu_processes_gloo(line_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "htrlab.cli.main",
        "train",
        *set_args(
            {
                "data.dataset": line_folder,
                "train.out_dir": out,
                "model.tiny": "true",
                "preprocess.height": 32,
                "train.batch_size": 2,
                "train.max_steps": 4,
                "train.eval_every": 2,
                "train.progress": "false",
                "train.threads": 1,
                "train.device": "cpu",
            }
        ),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 4
    assert (out / "best.safetensors").is_file()
    meta = read_meta(out / "best.safetensors")
    assert meta.data["train_lines"] == 4


def test_distillation_trains_student_from_teacher(line_folder: Path, tmp_path: Path) -> None:
    from htrlab.errors import ConfigError
    from htrlab.models import build_model, count_parameters

    train(_cfg(line_folder, tmp_path / "teacher", "train.max_steps=4", "train.eval_every=4"))
    teacher = tmp_path / "teacher" / "best.safetensors"
    summary = train(
        _cfg(
            line_folder,
            tmp_path / "student",
            "train.max_steps=4",
            "train.eval_every=4",
            "model.name=htr-jand-student",
            f"train.distill_from={teacher}",
            "train.log_every=1",
        )
    )
    assert summary["steps"] == 4
    rows = [json.loads(x) for x in (tmp_path / "student" / "metrics.jsonl").read_text().splitlines()]
    kls = [r["kl"] for r in rows if r["kind"] == "train"]
    assert len(kls) == 4 and all(k >= 0 and k == k for k in kls)
    meta = read_meta(tmp_path / "student" / "best.safetensors")
    assert meta.model_name == "htr-jand-student"
    assert meta.charset == read_meta(teacher).charset
    assert meta.training["config"]["train"]["distill_from"] == str(teacher)
    with pytest.raises(ConfigError, match="preprocess.height=32"):
        train(
            _cfg(
                line_folder,
                tmp_path / "bad",
                "train.max_steps=1",
                "model.name=htr-jand-student",
                f"train.distill_from={teacher}",
                "preprocess.pad=2",
            )
        )
    ratio = count_parameters(build_model("htr-jand-student", 85)) / count_parameters(
        build_model("htr-jand", 85)
    )
    assert 0.4 < ratio < 0.6


def test_distillation_kl_is_zero_for_identical_posteriors() -> None:
    from htrlab.models import build_model
    from htrlab.train.loop import distillation_kl

    torch.manual_seed(0)
    m = build_model("htr-jand", 10, tiny=True).eval()
    x, w = torch.rand(2, 1, 32, 64), torch.tensor([64, 40])
    with torch.no_grad():
        lp, lengths = m(x, w)
    assert float(distillation_kl(m, x, w, lp, lengths, 2.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_kl(m, x, w, torch.log_softmax(torch.randn_like(lp), -1), lengths, 2.0)) > 0.01
    # a student that rounds the last frame up (one frame more than the teacher): the frames both have count
    longer = torch.cat([lp, torch.log_softmax(torch.randn_like(lp[:, :1]), -1)], 1)
    assert float(distillation_kl(m, x, w, longer, lengths, 2.0)) == pytest.approx(0.0, abs=1e-6)


def test_skipped_samples_are_counted_and_listed(line_folder: Path, tmp_path: Path) -> None:
    from conftest import render_line, save_png

    save_png(render_line("ab"), line_folder / "train" / "docx" / "narrow.png")
    (line_folder / "train" / "docx" / "narrow.txt").write_text("a very long text for such a tiny image")
    train(
        _cfg(line_folder, tmp_path / "run", "train.max_steps=2", "train.eval_every=2", "data.on_error=skip")
    )
    listed = (tmp_path / "run" / "skipped.txt").read_text()
    assert "narrow" in listed and "minimum width" in listed
    meta = read_meta(tmp_path / "run" / "best.safetensors")
    assert meta.data["skipped_train_lines"] == 1 and meta.data["train_lines"] == 4


def test_trocr_trains_saves_and_evaluates(line_folder: Path, tmp_path: Path) -> None:
    from htrlab.errors import ConfigError

    with pytest.raises(ConfigError, match="resize=square"):
        train(_cfg(line_folder, tmp_path / "bad", "model.name=trocr-small", "train.max_steps=1"))
    summary = train(
        _cfg(
            line_folder,
            tmp_path / "run",
            "model.name=trocr-small",
            "preprocess.resize=square",
            "train.max_steps=40",
            "train.eval_every=40",
            "train.log_every=1",
            "data.val_split=train",
            "augment.enabled=true",  # slant and stretch change the width; the square must survive them
            "augment.p=1.0",
        )
    )
    assert summary["steps"] == 40
    losses = [
        json.loads(x)["loss"]
        for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        if '"train"' in x
    ]
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5  # it learns
    loaded = load_checkpoint(tmp_path / "run" / "best.safetensors")
    res = evaluate_splits(loaded, line_folder, ["train"], progress=False)[0]
    assert res.lines == 4 and res.cer >= 0.0


def _tiny_pretrained_trocr(folder: Path) -> Path:
    """A tiny VisionEncoderDecoder checkpoint and its own tokenizer, saved like a hub download would be
    (RoBERTa-style ids: <s> = 0, <pad> = 1, </s> = 2, and </s> as the decoder start, as Microsoft's TrOCR)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        TrOCRConfig,
        TrOCRForCausalLM,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTModel,
    )

    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for c in " abcdefghijklmnopqrstuvwxyz":
        vocab[c] = len(vocab)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    enc = ViTConfig(
        image_size=32,
        patch_size=8,
        num_channels=3,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    dec = TrOCRConfig(
        vocab_size=len(vocab),
        d_model=32,
        decoder_layers=1,
        decoder_attention_heads=2,
        decoder_ffn_dim=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        decoder_start_token_id=2,
        cross_attention_hidden_size=32,
    )
    net = VisionEncoderDecoderModel(
        encoder=ViTModel(enc, add_pooling_layer=False), decoder=TrOCRForCausalLM(dec)
    )
    net.config.decoder_start_token_id, net.config.pad_token_id, net.config.eos_token_id = 2, 1, 2
    net.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def test_trocr_from_a_local_pretrained_checkpoint(line_folder: Path, tmp_path: Path) -> None:
    import shutil

    from htrlab.models import build_model
    from htrlab.text import Charset

    pretrained = _tiny_pretrained_trocr(tmp_path / "hf")
    m = build_model("trocr-small", 10, {"pretrained": str(pretrained)})
    # labels: the checkpoint's own tokens, one end token, and no start token (the model prepends </s>)
    labels = m.labels(torch.zeros(0, dtype=torch.long), torch.tensor([0, 0]), ["ab", "c"])
    assert labels.tolist() == [[5, 6, 2], [7, 2, -100]]
    assert m.start == 2 and m.eos == 2 and m.pad == 1
    cfg = _cfg(
        line_folder,
        tmp_path / "run",
        "model.name=trocr-small",
        f"model.params.pretrained={pretrained}",
        "preprocess.resize=square",
        "preprocess.normalize=false",
        "train.max_steps=3",
        "train.eval_every=3",
    )
    train(cfg)
    shutil.rmtree(pretrained)  # the checkpoint carries the architecture and tokenizer itself
    loaded = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert loaded.model.tokenizer is not None
    texts, _ = loaded.model.generate(torch.rand(2, 1, 32, 32), Charset(list("ab")))
    assert len(texts) == 2 and all(set(t) <= set(" abcdefghijklmnopqrstuvwxyz") for t in texts)


def test_vit_ctc_starts_from_a_trocr_encoder(line_folder: Path, tmp_path: Path) -> None:
    import shutil

    from transformers import VisionEncoderDecoderModel

    from htrlab.models import build_model

    pretrained = _tiny_pretrained_trocr(tmp_path / "hf")
    ref = VisionEncoderDecoderModel.from_pretrained(pretrained).encoder.state_dict()
    m = build_model("vit-ctc", 10, {"pretrained": str(pretrained), "input_height": 32})
    mine = m.encoder.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in ref.items() if not k.startswith("pooler."))
    x, w = torch.rand(2, 1, 32, 80), torch.tensor([80, 64])
    lp, lengths = m.eval()(x, w)
    assert lengths.tolist() == [20, 16] and lp.shape[1] == 20  # W * 2 / 8 frames
    train(
        _cfg(
            line_folder,
            tmp_path / "run",
            "model.name=vit-ctc",
            f"model.params.pretrained={pretrained}",
            "train.max_steps=2",
            "train.eval_every=2",
        )
    )
    shutil.rmtree(pretrained)
    loaded = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert loaded.meta.model_config["encoder_config"]["model_type"] == "vit"


def _extra_folder(tmp_path: Path) -> Path:
    from tests.conftest import render_line, save_png

    root = tmp_path / "extra"
    for i, text in enumerate(["zebra quiz", "jolly fox", "box of 42"]):
        stem = root / ("train" if i < 2 else "val") / f"e{i}"
        save_png(render_line(text, seed=10 + i), stem.with_suffix(".png"))
        stem.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
    return root


def test_extra_training_sets_are_mixed_in(line_folder: Path, tmp_path: Path) -> None:
    extra = _extra_folder(tmp_path)
    cfg = _cfg(line_folder, tmp_path / "run", "train.max_steps=2", "train.eval_every=2")
    cfg.data.extra_train = [ExtraData(dataset=str(extra), split="", max_lines=2)]
    train(cfg)
    meta = read_meta(tmp_path / "run" / "best.safetensors")
    assert len(meta.data["train_fingerprints"]) == 4 + 2  # the main train split and two extra lines
    assert meta.data["extra_train"] == [
        {"dataset": str(extra), "split": "", "line_crop": "mixed", "lines": 2}
    ]
    assert meta.data["val_lines"] == 2  # validation stays on the main dataset


def test_extra_set_cuts_page_lines_its_own_way(line_folder: Path, tmp_path: Path) -> None:
    from tests.conftest import make_page

    pages = tmp_path / "pages"
    pages.mkdir()
    make_page(pages, ["zebra quiz", "jolly fox"])
    cfg = _cfg(line_folder, tmp_path / "run", "train.max_steps=1", "train.eval_every=1")
    cfg.data.extra_train = [
        ExtraData(dataset=str(pages), split="", line_crop="band"),
        ExtraData(dataset=str(pages), split="", line_crop="polygon"),  # the former name of "outline"
    ]
    train(cfg)
    meta = read_meta(tmp_path / "run" / "best.safetensors")
    assert [e["line_crop"] for e in meta.data["extra_train"]] == ["band", "outline"]
    band, outline = meta.data["train_fingerprints"][4:6], meta.data["train_fingerprints"][6:8]
    assert len(band) == len(outline) == 2 and not set(band) & set(outline)  # the same lines, cut two ways
    with pytest.raises(ConfigError, match="line crop"):
        ExtraData(dataset=str(pages), line_crop="diagonal")


def test_mixed_crops_prepare_every_style_and_draw_one_cut_per_line(tmp_path: Path) -> None:
    from tests.conftest import make_page

    from htrlab.train.loop import cut_every_way, draw_one_per_line, line_groups

    make_page(tmp_path, ["zebra quiz", "jolly fox"])
    samples = open_dataset(tmp_path).samples
    cuts = cut_every_way(samples, "mixed", 2)
    assert len(cuts) == 2 * 4 * 2
    assert {(c.crop, c.variant) for c in cuts} == {
        (s, k) for s in ("band", "outline", "box", "ink") for k in (1, 2)
    }
    plain = cut_every_way(samples, "mixed", 0)  # validation: every style's plain cut
    assert [c.variant for c in plain] == [0] * 8 and len({c.id for c in plain}) == 8
    assert cut_every_way(samples, "outline", 2) == samples
    groups = line_groups([c.id for c in cuts], [c.text for c in cuts])
    assert groups.tolist() == [0] * 8 + [1] * 8
    # an extra set's lines cut another way (``@outline``) are lines of their own, and another dataset's line
    # with the same id but other text is another line
    assert line_groups(["a~band1", "a~ink1", "a@outline", "a~band1"], ["x", "x", "x", "y"]).tolist() == [
        0,
        0,
        1,
        2,
    ]
    seen = set()
    for epoch in range(20):
        drawn = draw_one_per_line(groups, np.random.default_rng(epoch))
        assert sorted(groups[drawn].tolist()) == [0, 1]  # one cut of every line per epoch
        seen |= set(drawn.tolist())
    assert len(seen) > 8  # and different cuts in different epochs
    # the cuts really differ: a varied cut is reproducible, and not the plain one
    a, b = cuts[0].load_image(), cuts[0].load_image()
    assert np.array_equal(a, b) and not np.array_equal(a, plain[0].load_image())


def test_crop_weights_draw_styles_in_proportion() -> None:
    from htrlab.train.config import DataSection
    from htrlab.train.loop import cut_weights, draw_one_per_line, line_groups

    ids = [f"p/l{n}~{style}1" for n in range(500) for style in ("band", "outline", "box", "ink")]
    ids.append("synthetic/7")  # a line image of its own: weight 1, always drawn
    groups = line_groups(ids, ["t"] * len(ids))
    assert (
        cut_weights(ids, {}) is None
        and cut_weights(ids, {"band": 2, "outline": 2, "box": 2, "ink": 2}) is None
    )
    weights = cut_weights(ids, {"band": 1, "outline": 3})
    assert weights is not None and weights[:4].tolist() == [1, 3, 1, 1] and weights[-1] == 1
    counts = np.zeros(4)
    for epoch in range(8):
        drawn = draw_one_per_line(groups, np.random.default_rng(epoch), weights)
        assert sorted(groups[drawn].tolist()) == list(range(501))  # still one cut of every line
        counts += np.bincount(drawn[:-1] % 4, minlength=4)
    share = counts / counts.sum()  # expected 1/6, 3/6, 1/6, 1/6 of 4,000 draws
    assert abs(share[1] - 0.5) < 0.03 and all(abs(share[k] - 1 / 6) < 0.03 for k in (0, 2, 3))
    with pytest.raises(ConfigError, match="unknown line crop 'diagonal'"):
        DataSection(crop_weights={"diagonal": 1.0})
    with pytest.raises(ConfigError, match="above 0"):
        DataSection(crop_weights={"band": 0})
    with pytest.raises(ConfigError, match="set data.line_crop: mixed"):
        DataSection(line_crop="band", crop_weights={"outline": 2})


def test_training_on_mixed_crops_validates_every_style(tmp_path: Path) -> None:
    from tests.conftest import make_page

    pages = tmp_path / "pages"
    pages.mkdir()
    make_page(pages, ["zebra quiz", "jolly fox", "box of 42", "a quiet day"])
    (pages / "splits.tsv").write_text("page1\ttrain\n", encoding="utf-8")
    cfg = _cfg(pages, tmp_path / "run", "train.max_steps=1", "train.eval_every=1", "data.crop_variants=1")
    cfg.data.val_split = "train"
    train(cfg)
    meta = read_meta(tmp_path / "run" / "best.safetensors")
    assert meta.data["line_crop"] == "mixed"
    assert meta.data["train_lines"] == 4 * 4 and meta.data["val_lines"] == 4 * 4


def test_extra_training_set_without_text_is_an_error(line_folder: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.png").write_bytes((line_folder / "train" / "doc0" / "line0.png").read_bytes())
    (empty / "a.txt").write_text("\n", encoding="utf-8")
    cfg = _cfg(line_folder, tmp_path / "run", "train.max_steps=1")
    cfg.data.extra_train = [ExtraData(dataset=str(empty), split="")]
    with pytest.raises(DataError, match="no lines with text"):
        train(cfg)


def test_init_from_keeps_old_characters_and_weights(line_folder: Path, tmp_path: Path) -> None:
    train(_cfg(line_folder, tmp_path / "base", "train.max_steps=3", "train.eval_every=3"))
    base = load_checkpoint(tmp_path / "base" / "best.safetensors")
    extra = _extra_folder(tmp_path)
    # fine-tune on other data, with new characters (z, q, j, ...) and without some old ones
    cfg = _cfg(
        extra,
        tmp_path / "tuned",
        f"model.init_from={tmp_path / 'base' / 'best.safetensors'}",
        "train.max_steps=1",
        "train.lr=1e-12",
        "train.warmup_steps=0",
    )
    train(cfg)
    tuned = load_checkpoint(tmp_path / "tuned" / "best.safetensors")
    old, new = base.charset.symbols, tuned.charset.symbols
    assert new[: len(old)] == old  # old characters keep their indices
    assert set("zqj") <= set(new[len(old) :])
    # parameters (not BatchNorm statistics, which one training step moves) are the base model's
    sb, st = dict(base.model.named_parameters()), dict(tuned.model.named_parameters())
    head = [k for k in sb if sb[k].shape[:1] == (len(base.charset),)]
    assert head, "the output layer was not found"
    for k in sb:
        if k in head:
            assert torch.allclose(st[k][: len(base.charset)], sb[k], atol=1e-6), k
        else:
            assert torch.allclose(st[k], sb[k], atol=1e-6), k


def test_init_from_another_model_is_refused(line_folder: Path, tmp_path: Path) -> None:
    train(_cfg(line_folder, tmp_path / "base", "train.max_steps=1", "train.eval_every=1"))
    cfg = _cfg(
        line_folder,
        tmp_path / "tuned",
        f"model.init_from={tmp_path / 'base' / 'best.safetensors'}",
        "model.name=htr-jand-student",
    )
    with pytest.raises(ConfigError, match="set model.name=htr-jand"):
        train(cfg)
    cfg = _cfg(line_folder, tmp_path / "tuned2", f"model.init_from={tmp_path / 'base' / 'best.safetensors'}")
    cfg.preprocess.height = 48
    with pytest.raises(ConfigError, match="preprocess.height=32"):
        train(cfg)
    # a width change (the padding) is what fine-tuning can adapt to: allowed
    cfg = _cfg(
        line_folder,
        tmp_path / "padded",
        f"model.init_from={tmp_path / 'base' / 'best.safetensors'}",
        "preprocess.pad=12",
        "train.max_steps=1",
    )
    train(cfg)
    assert load_checkpoint(tmp_path / "padded" / "best.safetensors").preprocess.pad == 12


def test_not_reading_flags_blank_and_collapsed_output_only() -> None:
    from htrlab.text.metrics import not_reading

    refs = [f"line number {i} of the letter" for i in range(20)]
    assert "all-blank" in not_reading(refs, [""] * 15 + ["line"] * 5)
    collapsed = not_reading(refs, ["the the the"] * 12 + [f"lin {i}" for i in range(8)])
    assert "same reading 'the the the'" in collapsed
    assert not_reading(refs, [r.replace("o", "a") for r in refs]) == ""  # poor but image-dependent
    assert not_reading(refs[:5], [""] * 5) == ""  # too few lines to say
    assert not_reading(["same"] * 20, ["same"] * 20) == ""  # identical references, identical readings


def test_checkpoint_of_an_lstm_whose_weights_share_one_buffer(tmp_path: Path) -> None:
    """On a GPU, cuDNN makes every LSTM weight a view of one packed buffer, which safetensors refuses to store
    as such (a real training run on an H100 crashed at its first checkpoint); the weights are saved all the
    same and load back unchanged."""
    from htrlab.data.preprocess import PreprocessConfig
    from htrlab.models.checkpoint import make_meta, save_checkpoint
    from htrlab.models.registry import build_model
    from htrlab.text.charset import Charset

    charset = Charset.from_texts(["dear sir"])
    model = build_model("htr-jand", len(charset), {}, tiny=True)
    lstm = next(m for m in model.modules() if isinstance(m, torch.nn.LSTM))
    weights = list(lstm.parameters())
    packed = torch.cat([w.detach().reshape(-1) for w in weights])
    offset = 0
    for w in weights:  # what cuDNN's flatten_parameters does
        w.data = packed[offset : offset + w.numel()].view_as(w)
        offset += w.numel()
    assert weights[0].untyped_storage().data_ptr() == weights[-1].untyped_storage().data_ptr()
    out = tmp_path / "m.safetensors"
    save_checkpoint(out, model, make_meta(model, "htr-jand", charset, PreprocessConfig(height=32)))
    loaded = load_checkpoint(out).model.state_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(loaded[k], v), k


def test_device_per_process_under_torchrun(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each process of a machine takes its own GPU; with more processes than GPUs, `auto` puts every process
    on the CPU and `cuda` is refused with what to do (on the H100, two ranks on one GPU failed inside NCCL)."""
    from htrlab.train import loop

    picked: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", picked.append)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert loop._device("auto", 1) == torch.device("cpu")
    with pytest.raises(ConfigError, match="nproc_per_node 1"):
        loop._device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert loop._device("auto", 1) == torch.device("cuda", 1)
    assert picked == [torch.device("cuda", 1)]
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert loop._device("cpu", 0) == torch.device("cpu")


def test_resident_data_trains_with_augmentation_on_the_device(line_folder: Path, tmp_path: Path) -> None:
    """train.resident_data: the lines held as one tensor on the training device (here the CPU) and augmented
    there in whole batches: a tiny model still learns its four lines, the run is reproducible, and what the
    device path cannot do is refused."""
    common = (
        "train.resident_data=true",
        "augment.enabled=true",
        "train.epochs=400",
        "train.eval_every=100",
        "train.patience=0",
        "train.schedule=constant",
        "data.val_split=train",
    )
    torch.manual_seed(0)
    summary = train(_cfg(line_folder, tmp_path / "a", "train.max_steps=300", *common))
    log = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    first = next(r["val_cer"] for r in log if r["kind"] == "eval")
    assert first > 0.5 and summary["best_val_cer"] <= 0.2
    torch.manual_seed(0)
    train(_cfg(line_folder, tmp_path / "b", "train.max_steps=20", *common))
    again = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["kind"] == "train" and r["step"] <= 20]
    assert losses and losses == [r["loss"] for r in again if r["kind"] == "train"]
    with pytest.raises(ConfigError, match="resident_data"):
        train(_cfg(line_folder, tmp_path / "c", "train.resident_data=true", "augment.damage.ops=[fading]"))
    with pytest.raises(ConfigError, match="resident_data"):
        _cfg(line_folder, tmp_path / "d", "train.resident_data=sometimes")


def test_everything_htrlab_trains_is_one_checkpoint_format(tmp_path: Path) -> None:
    """Recognizers, line detectors and character LMs share the file format (safetensors + the ``htrlab`` JSON
    document with its ``kind``); each loader refuses the other kinds by name, and detector and LM files of the
    earlier flat form still load."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from htrlab.errors import CheckpointError
    from htrlab.lm.neural import EOL, UNK, CharLSTMLM
    from htrlab.models.checkpoint import load_checkpoint, read_meta
    from htrlab.segment.learned import CoreNet, LineDetector, load_detector, save_detector
    from htrlab.train.charlm import train_char_lm

    det = save_detector(LineDetector(CoreNet(4)), tmp_path / "det.safetensors", {"step": 3})
    lm_path = tmp_path / "lm.safetensors"
    train_char_lm(
        ["the cat sat", "on the mat"] * 5, lm_path, max_steps=2, hidden=8, emb=4, seq=8, batch=2, log=None
    )
    rec = tmp_path / "rec.safetensors"
    rec.write_bytes(
        (Path(__file__).resolve().parents[1] / "src/htrlab/weights/htrlab-default.safetensors").read_bytes()
    )
    for path, kind in ((det, "line-detector"), (lm_path, "char-lm")):
        with safe_open(str(path), "pt") as f:
            doc = json.loads(f.metadata()["htrlab"])
        assert doc["kind"] == kind and doc["format_version"] == 1 and "htrlab_version" in doc
    assert json.loads(safe_open(str(det), "pt").metadata()["htrlab"])["training"] == {"step": 3}
    with pytest.raises(
        CheckpointError, match="det.safetensors is a line-detector checkpoint, not a text recognizer"
    ):
        read_meta(det)
    with pytest.raises(
        CheckpointError, match="lm.safetensors is a char-lm checkpoint, not a text recognizer"
    ):
        load_checkpoint(lm_path)
    with pytest.raises(CheckpointError, match="lm.safetensors is a char-lm checkpoint, not a line-detector"):
        load_detector(lm_path)
    with pytest.raises(CheckpointError, match="rec.safetensors is a recognizer checkpoint, not a char-lm"):
        CharLSTMLM.load(rec)
    # the flat form written before (kind and sizes as metadata strings)
    lm = CharLSTMLM.load(lm_path)
    flat = tmp_path / "flat-lm.safetensors"
    meta = {
        "kind": "htrlab-char-lstm-lm",
        "vocab": json.dumps(lm.vocab),
        "sizes": json.dumps(lm.sizes),
        "facts": "{}",
    }
    save_file({k: v.contiguous() for k, v in lm.state_dict().items()}, str(flat), metadata=meta)
    again = CharLSTMLM.load(flat)
    assert again.vocab == lm.vocab and EOL in again.vocab and UNK in again.vocab
    assert again.log10_prob("the cat") == pytest.approx(lm.log10_prob("the cat"))
    net = CoreNet(4)
    flat_det = tmp_path / "flat-det.safetensors"
    meta = {"kind": "htrlab-line-detector", "width": "4", "canon_char_h": "10.0", "threshold": "0.5"}
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(flat_det), metadata=meta)
    assert load_detector(flat_det).net.width == 4
