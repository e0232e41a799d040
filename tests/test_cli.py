"""The CLI, in-process through main(argv)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import HOOKER, one_step_run, render_line, save_png
from htrlab.cli.main import main


def test_help_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "recognize" in capsys.readouterr().out
    assert main([]) == 2
    assert main(["nonsense"]) == 2


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys; from htrlab.cli.main import build_parser; build_parser(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_train_config_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--set", "train.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'train.lrr'" in err and "Did you mean 'lr'" in err
    assert "Traceback" not in err
    assert main(["train"]) == 2
    assert "data.dataset is empty" in capsys.readouterr().err


def test_train_print_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--print-config", "--set", "train.lr=0.5"]) == 0
    assert "lr: 0.5" in capsys.readouterr().out


def test_evaluate_table_json_and_leakage_warning(
    tiny_checkpoint: tuple[Path, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ckpt, data = tiny_checkpoint
    assert main(["evaluate", str(ckpt), str(data)]) == 0
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert lines[0].startswith("| split") and len(lines) == 5
    assert "WARNING" not in out.err
    assert main(["evaluate", str(ckpt), str(data), "--splits", "val,test", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)["results"]
    assert [r["split"] for r in res] == ["val", "test"]
    assert all(r["cer"] >= 0.0 for r in res) and res[0]["predictions"][0]["ref"]
    # a "test" set made of training images must be flagged loudly
    leak = tmp_path / "leak"
    shutil.copytree(data / "train", leak / "test")
    assert main(["evaluate", str(ckpt), str(leak), "--splits", "test"]) == 0
    assert "among this checkpoint's TRAINING lines" in capsys.readouterr().err


def test_training_lines_are_known_by_image_or_by_id_and_text(
    tiny_checkpoint: tuple[Path, Path], tmp_path: Path
) -> None:
    """A change of line crop changes every training image's fingerprint; the line keys (id and text) still
    recognise the training lines."""
    from dataclasses import replace

    from htrlab.evaluate.evaluator import evaluate_splits
    from htrlab.models.checkpoint import load_checkpoint

    ckpt, data = tiny_checkpoint
    loaded = load_checkpoint(ckpt)
    assert loaded.meta.data["train_line_keys"] and loaded.meta.data["train_fingerprints"]

    def leaked(**data_changes: list[str]) -> tuple[int, int]:
        m = replace(loaded, meta=replace(loaded.meta, data={**loaded.meta.data, **data_changes}))
        [r] = evaluate_splits(m, data, ["train"], progress=False, cache_dir=tmp_path / "cache")
        return r.leaked, r.lines

    n = leaked()[1]
    assert leaked(train_line_keys=[]) == (n, n)  # same images
    assert leaked(train_fingerprints=["0" * 16]) == (n, n)  # images cut another way: known by id and text
    assert leaked(train_line_keys=[], train_fingerprints=[]) == (0, n)


def test_evaluate_writes_reports(tiny_checkpoint: tuple[Path, Path], tmp_path: Path) -> None:
    ckpt, data = tiny_checkpoint
    xlsx, html = tmp_path / "r.xlsx", tmp_path / "r.html"
    assert (
        main(
            [
                "evaluate",
                str(ckpt),
                str(data),
                "--splits",
                "train,test",
                "--report",
                str(xlsx),
                "--report",
                str(html),
            ]
        )
        == 0
    )
    from openpyxl import load_workbook

    assert load_workbook(xlsx)["lines"].max_row == 1 + 4 + 2
    assert "data:image/png;base64," in html.read_text(encoding="utf-8")
    assert main(["evaluate", str(ckpt), str(data), "--report", str(tmp_path / "r.doc")]) == 2


def test_recognize_text_jsonl_and_bad_files(
    tiny_checkpoint: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, data = tiny_checkpoint
    imgs = sorted(str(p) for p in data.rglob("*.png"))[:2]
    assert main(["recognize", "-m", str(ckpt), *imgs]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and out[0].startswith(imgs[0] + "\t")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["recognize", "-m", str(ckpt), imgs[0], str(bad)]) == 1
    assert "bad.png" in capsys.readouterr().err
    assert (
        main(["recognize", "-m", str(ckpt), "--format", "jsonl", "--on-error", "skip", imgs[0], str(bad)])
        == 0
    )
    rows = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert set(rows[0]) >= {"path", "text", "confidence"}
    assert rows[1]["path"] == str(bad) and "not an image" in rows[1]["error"]
    assert main(["recognize", "-m", str(tmp_path / "missing.safetensors"), imgs[0]]) == 1


def test_recognize_default_model_on_bundled_examples(capsys: pytest.CaptureFixture[str]) -> None:
    from htrlab.bundled import DEFAULT_MODEL, example_images

    weights = Path(__import__("htrlab").__file__).parent / "weights" / DEFAULT_MODEL
    if not weights.is_file():
        pytest.skip("no bundled default model in this checkout")
    assert main(["recognize", "--format", "jsonl"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert len(rows) == len(example_images()) >= 1
    assert all(r["text"] for r in rows)


def test_export_onnx_matches_pytorch(
    tiny_checkpoint: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from htrlab.cli.export import max_difference

    ckpt, data = tiny_checkpoint
    onnx_path = tmp_path / "m.onnx"
    assert main(["export", str(ckpt), "-o", str(onnx_path)]) == 0
    assert "max |log-prob difference|" in capsys.readouterr().err
    assert max_difference(str(ckpt), str(onnx_path)) < 1e-4
    imgs = sorted(str(p) for p in data.rglob("*.png"))
    assert main(["recognize", "-m", str(ckpt), "--format", "jsonl", *imgs]) == 0
    torch_rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert main(["recognize", "-m", str(onnx_path), "--engine", "onnx", "--format", "jsonl", *imgs]) == 0
    onnx_rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in torch_rows] == [r["text"] for r in onnx_rows]
    assert main(["recognize", "-m", str(ckpt), "--engine", "onnx", imgs[0]]) == 2


def test_benchmark_json_rows(tiny_checkpoint: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    ckpt, data = tiny_checkpoint
    rc = main(
        [
            "benchmark",
            str(ckpt),
            "htr-jand",
            "--images",
            str(data),
            "--batch-sizes",
            "1,4",
            "--repeats",
            "1",
            "--threads",
            "1",
            "--engines",
            "torch,onnx",
            "--json",
        ]
    )
    assert rc == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 * 2
    keys = {
        "model",
        "decoder",
        "batch_size",
        "params",
        "sentences_per_s",
        "tokens_per_s",
        "latency_p50_ms",
        "latency_p95_ms",
    }
    assert all(keys <= set(r) for r in rows)
    assert all(r["sentences_per_s"] > 0 for r in rows)
    assert {r["engine"] for r in rows} == {"torch", "onnx"}
    b1 = [r for r in rows if r["batch_size"] == 1]
    assert all(r["latency_p50_ms"] > 0 and r["latency_p95_ms"] >= r["latency_p50_ms"] for r in b1)
    # onnxruntime runs batches as calls of at most 2 lines unless told otherwise; PyTorch whole batches
    assert {(r["engine"], r["lines_per_run"]) for r in rows} == {("torch", 0), ("onnx", 2)}
    # the arithmetic of a line is counted where there is a PyTorch module (the tiny checkpoint's forward, less
    # than the full-size HTR-JAND's); an ONNX row has none to count on
    flops = {(r["model"], r["engine"]): r["gflops_per_line"] for r in rows}
    assert flops[(str(ckpt), "onnx")] is None
    assert 0 < flops[(str(ckpt), "torch")] < flops[("htr-jand (random init)", "torch")]
    assert main(["benchmark", str(ckpt), "--batch-sizes", "1"]) == 2  # neither --data nor --images
    args = ["benchmark", str(ckpt), "--images", str(data), "--batch-sizes", "4", "--repeats", "1"]
    assert main([*args, "--engines", "onnx", "--lines-per-run", "0,1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["lines_per_run"] for r in rows] == [0, 1]
    assert main([*args, "--engines", "torch", "--lines-per-run", "1"]) == 0
    assert "applies to onnxruntime rows" in capsys.readouterr().err
    assert main([*args, "--lines-per-run", "two"]) == 2
    assert main([*args, "--lines-per-run", "-1"]) == 2


def test_benchmark_rows_per_engine_and_precision(
    tiny_checkpoint: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("openvino")
    ckpt, data = tiny_checkpoint
    args = ["benchmark", str(ckpt), "--images", str(data), "--batch-sizes", "2", "--repeats", "1"]
    assert (
        main(
            [
                *args,
                "--threads",
                "1",
                "--engines",
                "torch,onnx,openvino",
                "--precisions",
                "fp32,bf16",
                "--json",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    got = sorted((r["engine"], r["precision"]) for r in rows)
    # onnxruntime has no bfloat16 row; OpenVINO reports fp32 where the CPU has no bfloat16 instructions
    ov_bf16 = next(r["precision"] for r in rows[4:] if r["engine"] == "openvino")  # the 5th engine's rows
    assert ov_bf16 in ("bf16", "fp32")
    expected = [
        ("onnx", "fp32"),
        ("openvino", "fp32"),
        ("openvino", ov_bf16),
        ("torch", "bf16"),
        ("torch", "fp32"),
    ]
    assert got == sorted(expected)
    assert all(r["sentences_per_s"] > 0 for r in rows)
    assert main([*args, "--precisions", "fp16"]) == 2
    assert main([*args, "--engines", "tensorrt"]) == 2


def test_torch_bf16_reads_as_fp32_does(tiny_checkpoint: tuple[Path, Path]) -> None:
    import torch

    from htrlab.data.images import load_gray
    from htrlab.data.preprocess import preprocess
    from htrlab.read.engines import load_engine
    from htrlab.read.predict import emissions

    ckpt, data = tiny_checkpoint
    fp32, bf16 = load_engine(ckpt, "torch", 1), load_engine(ckpt, "torch", 1, "bf16")
    assert (fp32.precision, bf16.precision) == ("fp32", "bf16")
    files = sorted(data.rglob("*.png"))[:4]
    lines = [preprocess(load_gray(f), fp32.preprocess) for f in files]
    a, b = emissions(fp32, lines, 4), emissions(bf16, lines, 4)
    with bf16.context():
        assert torch.is_autocast_enabled("cpu")
    with fp32.context():
        assert not torch.is_autocast_enabled("cpu")
    assert all(e.dtype == torch.float32 for e in b)
    diff = max(float((x - y).abs().max()) for x, y in zip(a, b))
    assert 0 < diff < 0.5  # bfloat16 arithmetic did run, and computed nearly the same


def test_models_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert any(r["name"] == "htr-jand" and r["params"] > 1_000_000 for r in rows)
    probe = "import sys; from htrlab.cli.main import main; main(['models']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.split()[-1] == "False"  # listed without loading PyTorch (it starts at once)


def test_data_show_writes_grid(line_folder: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "grid.png"
    assert (
        main(["data", "show", str(line_folder), "-n", "5", "-o", str(out), "--height", "32", "--augment"])
        == 0
    )
    im = Image.open(out)
    assert im.height > 5 * 2 * 32


def test_data_check_clean_and_leaky(
    line_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "check", str(line_folder), "--min-text-chars", "5"]) == 0
    out = capsys.readouterr().out
    assert "no leakage found" in out and "train:" in out
    # the same image in train and test, and a re-encoded (near-identical) copy in val
    from PIL import Image

    src = line_folder / "train" / "doc0" / "line0.png"
    shutil.copy(src, line_folder / "test" / "dup.png")
    (line_folder / "test" / "dup.txt").write_text("something else entirely")
    Image.open(src).save(line_folder / "val" / "near.jpg", quality=70)
    (line_folder / "val" / "near.txt").write_text("different words here")
    assert main(["data", "check", str(line_folder), "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["leakage"] is True
    assert any("dup" in a + b for a, b in rep["identical_images"])
    assert any("near" in a + b for a, b, _ in rep["near_identical_images"])


def test_data_check_identical_transcriptions(line_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    save_png(render_line("completely different picture", seed=9), line_folder / "test" / "t.png")
    (line_folder / "test" / "t.txt").write_text("kind regards")  # same text as a training line
    assert main(["data", "check", str(line_folder), "--min-text-chars", "5", "--json"]) == 1
    rep = json.loads(capsys.readouterr().out)
    assert rep["identical_texts"] and rep["identical_texts"][0][2] == "kind regards"
    assert main(["data", "check", str(line_folder), "--min-text-chars", "50"]) == 0


def test_data_check_reports_unreadable(line_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (line_folder / "train" / "broken.png").write_bytes(b"not png")
    (line_folder / "train" / "broken.txt").write_text("x")
    assert main(["data", "check", str(line_folder)]) == 0  # reported, but not leakage
    assert "broken.png" in capsys.readouterr().out
    assert main(["data", "check", str(line_folder), "--strict"]) == 1


@pytest.mark.skipif(not HOOKER.is_dir(), reason="../shared/data/hooker-letters not present")
def test_hooker_dataset_opens_with_its_splits() -> None:
    from htrlab.data import open_dataset

    ds = open_dataset(HOOKER)
    assert ds.format == "page"
    nonempty = {s: sum(1 for x in ds.split(s) if x.text) for s in ds.splits}
    assert nonempty == {"train": 4885, "val": 692, "test": 639}
    docs = {s: {x.doc_id for x in ds.split(s)} for s in ds.splits}
    assert not docs["train"] & docs["test"] and not docs["train"] & docs["val"]


def test_gflops_of_autoregressive_reading_grow_with_the_tokens_generated() -> None:
    import numpy as np
    import torch

    from htrlab.data.preprocess import PreprocessConfig
    from htrlab.evaluate.speed import gflops_per_line
    from htrlab.models import build_model
    from htrlab.models.checkpoint import make_meta
    from htrlab.read.engines import Engine
    from htrlab.text import Charset

    cs = Charset(list("abcdefgh "))
    torch.manual_seed(0)  # random weights that do not write the end token in 16 steps (other seeds may)
    model = build_model("trocr-small", len(cs), tiny=True).eval()
    pre = PreprocessConfig(height=model.cfg.input_height, resize="square")
    engine = Engine(
        "torch", Path("trocr-small"), cs, pre, make_meta(model, "trocr-small", cs, pre), 0, None, model
    )
    line = np.zeros((model.cfg.input_height, model.cfg.input_height), np.uint8)
    model.cfg.max_length = 4
    short = gflops_per_line(engine, line)
    model.cfg.max_length = 16  # random weights never stop early: 16 steps
    long = gflops_per_line(engine, line)
    assert short is not None and long is not None and 0 < short < long


def _pages_with_a_bad_one(tmp_path: Path) -> Path:
    """Three PAGE-XML pages: two good ones (train, test), one whose image is missing (test)."""
    from conftest import make_page

    data = tmp_path / "pages"
    data.mkdir()
    for name in ("good", "gone", "fine"):
        make_page(data, ["hello world", "jolly fox"], name=name)
    (data / "gone.png").unlink()
    (data / "splits.tsv").write_text("page\tsplit\ngood\ttrain\ngone\ttest\nfine\ttest\n")
    return data


def test_evaluate_names_what_it_could_not_read(
    tiny_checkpoint: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt, _ = tiny_checkpoint
    data = _pages_with_a_bad_one(tmp_path)
    assert main(["evaluate", str(ckpt), str(data), "--splits", "test", "--json", "--on-error", "skip"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert len(result["skipped_when_opened"]) == 1 and "gone.xml" in result["skipped_when_opened"][0]
    assert result["results"][0]["lines"] == 2
    assert "1 pages or lines of" in err and "gone.xml" in err


def test_train_names_what_it_could_not_read(tmp_path: Path) -> None:
    from htrlab.models.checkpoint import read_meta
    from htrlab.train.loop import train

    data = _pages_with_a_bad_one(tmp_path)
    (data / "splits.tsv").write_text("page\tsplit\ngood\ttrain\ngone\ttrain\nfine\tval\n")
    cfg = one_step_run(data, tmp_path / "run", "data.on_error=skip")
    train(cfg)
    assert "gone.xml" in (tmp_path / "run" / "skipped.txt").read_text()
    assert read_meta(tmp_path / "run" / "best.safetensors").data["skipped_when_opened"] == 1


def test_unwritable_outputs_fail_before_the_work_and_never_lose_results(
    tiny_checkpoint: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from htrlab.cli.common import write_output
    from htrlab.errors import DataError

    ckpt, data = tiny_checkpoint
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    assert main(["evaluate", str(ckpt), str(data), "-o", str(blocker / "out.md")]) == 2
    assert "-o " in capsys.readouterr().err
    assert main(["evaluate", str(ckpt), str(data), "--report", str(blocker / "r.html")]) == 2
    image = tmp_path / "line.png"
    save_png(render_line("abc"), image)
    rc = main(["recognize", "-m", str(ckpt), str(image), "--format", "page-xml", "-o", str(blocker / "xml")])
    assert rc == 2 and "cannot create the folder" in capsys.readouterr().err
    assert main(["recognize", "-m", str(ckpt), str(image), "--show", str(blocker / "show")]) == 2
    # a file that cannot be written when the results are ready: they go to stdout, the error names the file
    (tmp_path / "folder.md").mkdir()
    with pytest.raises(DataError, match=r"cannot write .*folder\.md .*written to stdout instead"):
        write_output("| split | lines |", str(tmp_path / "folder.md"))
    assert capsys.readouterr().out == "| split | lines |\n"


def test_an_unwritable_cache_means_running_without_one(
    tiny_checkpoint: tuple[Path, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ckpt, data = tiny_checkpoint
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("HTRLAB_CACHE", str(blocker / "cache"))
    assert main(["evaluate", str(ckpt), str(data), "--splits", "test"]) == 0
    out, err = capsys.readouterr()
    assert "| test |" in out and "running without a cache" in err
