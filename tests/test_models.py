"""Shared checks for every registered model, parametrised over the registry."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from htrlab.data.preprocess import PreprocessConfig
from htrlab.errors import CheckpointError, ConfigError, ModelError
from htrlab.models import build_model, count_parameters, model_names
from htrlab.models.checkpoint import load_checkpoint, make_meta, read_meta, save_checkpoint
from htrlab.models.registry import get_spec, make_config
from htrlab.text import Charset

NAMES = model_names()
CTC = [n for n in NAMES if not getattr(get_spec(n).model_cls, "seq2seq", False)]
SEQ2SEQ = [n for n in NAMES if n not in CTC]


def _tiny(name: str, classes: int = 12) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(name, classes, tiny=True)


@pytest.mark.parametrize("name", CTC)
def test_shapes_and_lengths(name: str) -> None:
    m = _tiny(name).eval()
    h = m.cfg.input_height
    x = torch.rand(3, 1, h, 96)
    widths = torch.tensor([96, 64, 40])
    lp, lengths = m(x, widths)
    assert lp.shape[0] == 3 and lp.shape[2] == 12
    assert lengths.tolist() == [int(m.output_length(w)) for w in widths.tolist()]
    assert torch.allclose(lp.exp().sum(-1), torch.ones(lp.shape[:2]), atol=1e-4)


@pytest.mark.parametrize("name", CTC)
def test_padding_does_not_change_the_output(name: str) -> None:
    m = _tiny(name).eval()
    if not getattr(m, "supports_padding", True):
        pytest.skip(f"{name} attends over padding by design (its batches are width-bucketed)")
    h = m.cfg.input_height
    x = torch.rand(1, 1, h, 64)
    padded = torch.zeros(1, 1, h, 128)
    padded[..., :64] = x
    a, la = m(x, torch.tensor([64]))
    b, lb = m(padded, torch.tensor([64]))
    n = int(la[0])
    assert int(lb[0]) == n
    # convolutions see the zero padding at the right edge, so compare away from it
    assert torch.allclose(a[0, : n - 2], b[0, : n - 2], atol=1e-3)


@pytest.mark.parametrize("name", CTC)
def test_finite_loss_and_gradients(name: str) -> None:
    m = _tiny(name).train()
    h = m.cfg.input_height
    lp, lengths = m(torch.rand(2, 1, h, 80), torch.tensor([80, 80]))
    targets = torch.tensor([1, 2, 3, 4, 5])
    loss = F.ctc_loss(lp.transpose(0, 1), targets, lengths, torch.tensor([3, 2]), blank=0)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in m.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name", CTC)
def test_save_load_roundtrip(name: str, tmp_path: Path) -> None:
    m = _tiny(name).eval()
    cs = Charset(list("abcdefghijk"))
    pre = PreprocessConfig(height=m.cfg.input_height)
    save_checkpoint(tmp_path / "m.safetensors", m, make_meta(m, name, cs, pre, {"dataset": "x"}))
    loaded = load_checkpoint(tmp_path / "m.safetensors")
    assert loaded.charset == cs and loaded.preprocess == pre
    x = torch.rand(1, 1, m.cfg.input_height, 64)
    w = torch.tensor([64])
    assert torch.allclose(m(x, w)[0], loaded.model(x, w)[0], atol=1e-6)


@pytest.mark.parametrize("name", CTC)
def test_bad_input_is_rejected(name: str) -> None:
    m = _tiny(name).eval()
    with pytest.raises(ValueError, match="expects"):
        m(torch.rand(1, 3, 17, 64), torch.tensor([64]))


def test_the_catalog_tells_every_architecture_and_its_size() -> None:
    """``htrlab models`` reads sizes from htrlab.models.catalog without PyTorch; they must be what building the
    architectures gives, at any number of classes."""
    from htrlab.models.catalog import CATALOG
    from htrlab.models.registry import get_spec

    assert sorted(CATALOG) == model_names()
    for name in model_names():
        assert get_spec(name).description == CATALOG[name].description
        for classes in (37, 100):
            try:
                with torch.device("meta"):  # sizes only
                    built = count_parameters(build_model(name, classes))
            except RuntimeError:  # models converted from ONNX copy real weights while building
                built = count_parameters(build_model(name, classes))
            assert CATALOG[name].params(classes) == built, (name, classes)


def test_every_architecture_keeps_the_recognizer_contract() -> None:
    """Capabilities are flags on htrlab.models.base.Recognizer: a flag set means its method is implemented, a flag
    unset means the base's, and nothing else is probed."""
    from torch import nn

    from htrlab.models.base import Recognizer
    from htrlab.models.registry import get_spec, register

    promised = {
        "has_pretrained": "init_pretrained",
        "adapts_input_height": "warm_start_tensor",
        "own_onnx_graph": "onnx_graph",
        "seq2seq": "generate",
    }
    for name in model_names():
        cls = get_spec(name).model_cls
        assert issubclass(cls, Recognizer), name
        for flag, method in promised.items():
            overridden = getattr(cls, method) is not getattr(Recognizer, method)
            assert getattr(cls, flag) == overridden, (name, flag)
    with pytest.raises(ModelError, match="Recognizer"):
        register("htr-jand", object, nn.Linear, {})  # type: ignore[arg-type]


def test_teacher_size_and_unknown_names() -> None:
    n = count_parameters(build_model("htr-jand", 85))
    assert 2_500_000 < n < 4_000_000
    with pytest.raises(ModelError, match="known models: .*htr-jand"):
        build_model("htr-jandd", 10)
    with pytest.raises(ConfigError, match="Did you mean 'dropout'"):
        make_config("htr-jand", {"dropuot": 0.1})
    with pytest.raises(ConfigError, match="not divisible"):
        make_config("htr-jand", {"input_height": 50})


def test_checkpoint_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        read_meta(tmp_path / "none.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not written by htrlab"):
        load_checkpoint(tmp_path / "foreign.safetensors")
    m = _tiny("htr-jand")
    meta = make_meta(m, "htr-jand", Charset(list("abc")), PreprocessConfig(height=32))
    save_checkpoint(tmp_path / "wrong.safetensors", m, meta)  # 12 outputs but a 4-class charset
    with pytest.raises(CheckpointError, match="wrong.safetensors.*do not fit"):
        load_checkpoint(tmp_path / "wrong.safetensors")


def _square(name: str, n: int = 2) -> tuple[torch.nn.Module, torch.Tensor]:
    m = _tiny(name)
    side = m.cfg.input_height
    return m, torch.rand(n, 1, side, side)


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_seq2seq_loss_and_gradients(name: str) -> None:
    m, x = _square(name)
    m.train()
    targets, lengths = torch.tensor([1, 2, 3, 4, 5]), torch.tensor([3, 2])
    labels = m.labels(targets, lengths)
    # labels are the characters shifted past the special tokens, then exactly one end token, then padding
    assert labels.tolist() == [[3, 4, 5, 2], [6, 7, 2, -100]]
    loss = m(x, torch.tensor([x.shape[3]] * 2), targets, lengths)
    assert torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None for p in m.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_seq2seq_generate_greedy_and_beam(name: str) -> None:
    m, x = _square(name)
    m.eval()
    cs = Charset(list("abcdefghijk"))
    texts, confs = m.generate(x, cs)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert all(0 <= c <= 1 for c in confs)
    assert all(len(t) <= m.cfg.max_length and set(t) <= set(cs.symbols) for t in texts)
    m.cfg.num_beams = 3
    beam, _ = m.generate(x, cs)
    assert len(beam) == 2


@pytest.mark.parametrize("name", SEQ2SEQ)
def test_seq2seq_save_load_roundtrip_and_bad_input(name: str, tmp_path: Path) -> None:
    m, x = _square(name, 1)
    m.eval()
    cs = Charset(list("abcdefghijk"))
    pre = PreprocessConfig(height=m.cfg.input_height, resize="square")
    save_checkpoint(tmp_path / "m.safetensors", m, make_meta(m, name, cs, pre))
    loaded = load_checkpoint(tmp_path / "m.safetensors")
    assert loaded.model.generate(x, cs) == m.generate(x, cs)
    with pytest.raises(ValueError, match="expects"):
        m.generate(torch.rand(1, 1, 16, 64), cs)


@pytest.mark.parametrize("name, copy_field", [("trocr-small", "hf_config"), ("vit-ctc", "encoder_config")])
def test_checkpoint_naming_a_hub_model_is_not_fetched(
    name: str, copy_field: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint is rebuilt from its own file: one naming a hub model without a copy of its architecture is
    refused before anything could reach the network, through load_checkpoint and `recognize -m`."""
    import dataclasses

    import transformers

    from conftest import render_line, save_png
    from htrlab.cli.main import main

    def no_fetch(*_a: object, **_k: object) -> None:
        raise AssertionError("from_pretrained was called")

    monkeypatch.setattr(transformers.VisionEncoderDecoderModel, "from_pretrained", no_fetch)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", no_fetch)
    charset = Charset(list("abc "))
    model = build_model(name, len(charset), tiny=True)
    meta = make_meta(model, name, charset, PreprocessConfig(height=32))
    meta = dataclasses.replace(meta, model_config={**meta.model_config, "pretrained": "some-org/some-model"})
    for cfg in (meta.model_config, {k: v for k, v in meta.model_config.items() if k != copy_field}):
        path = tmp_path / "hostile.safetensors"
        save_checkpoint(path, model, dataclasses.replace(meta, model_config=cfg))
        with pytest.raises(
            CheckpointError, match=r"hostile.safetensors: names the pretrained model 'some-org"
        ):
            load_checkpoint(path)
    image = tmp_path / "line.png"
    save_png(render_line("abc"), image)
    assert main(["recognize", "-m", str(path), str(image)]) == 1


def test_tampered_checkpoint_configuration_is_refused_before_allocating(tmp_path: Path) -> None:
    """Channels of 10^5 in the metadata would build a model of 185 G weights; it is refused from the file's
    header and a memoryless build, in well under a second."""
    import dataclasses

    cs = Charset(list("abc "))
    model = build_model("htr-jand", len(cs), tiny=True)
    meta = make_meta(model, "htr-jand", cs, PreprocessConfig(height=32))
    bad = dataclasses.replace(
        meta, model_config={**meta.model_config, "channels": [100_000, 100_000, 16, 16, 32]}
    )
    save_checkpoint(tmp_path / "bad.safetensors", model, bad)
    with pytest.raises(
        CheckpointError, match=r"bad.safetensors: its metadata describes a model of [\d,]+ weights"
    ):
        load_checkpoint(tmp_path / "bad.safetensors")
