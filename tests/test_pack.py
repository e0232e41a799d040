"""Packs (``htrlab data pack``): preprocessed lines in one small file that training reads like any dataset."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from htrlab.cli.main import main
from htrlab.data.dataset import open_dataset
from htrlab.data.pack import dequantize4, quantize4, read_pack
from htrlab.data.prepared import prepare_lines
from htrlab.data.preprocess import PreprocessConfig
from htrlab.errors import DataError
from htrlab.models.checkpoint import read_meta
from htrlab.train.loop import load_run_config, train


def _pages(tmp_path: Path) -> Path:
    from tests.conftest import make_page

    pages = tmp_path / "pages"
    pages.mkdir()
    make_page(pages, ["zebra quiz", "jolly fox", "box of 42", "a quiet day"])
    make_page(pages, ["seeds of kew", "many thanks"], name="page2")
    (pages / "splits.tsv").write_text("page1\ttrain\npage2\tval\n", encoding="utf-8")
    return pages


def _pack(tmp_path: Path, pages: Path, *extra: str, name: str = "p.htrpack") -> dict:
    out = tmp_path / name
    assert main(["data", "pack", str(pages), "-o", str(out), "--height", "32", *extra]) == 0
    return {"path": out}


def test_4_bit_levels_round_trip_within_8_grey_levels() -> None:
    x = np.arange(256, dtype=np.uint8)
    for n in (256, 255):  # even and odd pixel counts
        back = dequantize4(quantize4(x[:n]), n)
        assert back.shape == (n,) and np.abs(back.astype(int) - x[:n]).max() <= 8
    assert dequantize4(quantize4(np.array([0, 255], np.uint8)), 2).tolist() == [0, 255]


def test_a_pack_holds_every_split_as_prepared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pages = _pages(tmp_path)
    out = _pack(tmp_path, pages)["path"]
    summary = json.loads(capsys.readouterr().out)
    assert summary["lines"] == {"train": 4, "val": 2} and summary["bytes"] == out.stat().st_size
    pack = read_pack(out)
    assert pack.preprocess == PreprocessConfig(height=32)
    cfg = PreprocessConfig(height=32)
    direct = prepare_lines(open_dataset(pages).split("train"), cfg, cache_dir=None, progress=False)
    packed = pack.splits["train"]
    assert packed.ids == direct.ids and packed.texts == direct.texts
    assert packed.fingerprints == direct.fingerprints  # leakage checks still see the raw images
    for a, b in zip(packed.images, direct.images):
        assert a.shape == b.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 8
    # read as a dataset: the stored images are the model input when the preprocessing matches ...
    ds = open_dataset(out)
    assert ds.format == "pack" and ds.splits == ["train", "val"] and len(ds.split("val")) == 2
    again = prepare_lines(ds.split("train"), cfg, cache_dir=tmp_path / "cache", progress=False)
    assert all(np.array_equal(a, b) for a, b in zip(again.images, packed.images))
    assert not (tmp_path / "cache").exists()  # ... and are not copied into the cache
    # ... and line images to preprocess again when it does not
    other = prepare_lines(ds.split("train"), PreprocessConfig(height=24), cache_dir=None, progress=False)
    assert all(im.shape[0] == 24 for im in other.images) and len(other) == 4


def test_mixed_crop_packs_keep_the_cuts_of_a_line_together(tmp_path: Path) -> None:
    pages = _pages(tmp_path)
    out = _pack(tmp_path, pages, "--line-crop", "mixed", "--crop-variants", "2")["path"]
    pack = read_pack(out)
    assert len(pack.splits["train"]) == 4 * 4 * 2 and len(pack.splits["val"]) == 2 * 4
    assert pack.meta["line_crop"] == "mixed" and pack.meta["crop_variants"] == 2
    assert {i.split("~")[1] for i in pack.splits["val"].ids} == {"band", "outline", "box", "ink"}


def test_one_style_per_line_keeps_each_line_once_in_a_drawn_style(tmp_path: Path) -> None:
    from tests.conftest import make_page

    pages = tmp_path / "many"
    pages.mkdir()
    make_page(pages, [f"line number {k}" for k in range(24)])
    (pages / "splits.tsv").write_text("page1\ttrain\n", encoding="utf-8")
    packs = [
        read_pack(_pack(tmp_path, pages, "--line-crop", "mixed", *more, name=f"{k}.htrpack")["path"])
        for k, more in enumerate(
            [[], ["--one-style-per-line"], ["--one-style-per-line"], ["--one-style-per-line", "--seed", "1"]]
        )
    ]
    every, one, again, other = (p.splits["train"] for p in packs)
    assert len(every) == 4 * 24 and len(one) == 24
    lines = [i.split("~")[0] for i in one.ids]
    assert len(set(lines)) == 24  # each line once
    styles = [i.split("~")[1].rstrip("0123456789") for i in one.ids]
    assert set(styles) == {
        "band",
        "outline",
        "box",
        "ink",
    }  # 24 draws: every style (chance of missing one ~1 %)
    assert one.ids == again.ids and one.ids != other.ids  # seeded
    by_id = dict(zip(every.ids, every.images))
    assert all(np.array_equal(im, by_id[i]) for i, im in zip(one.ids, one.images))  # the same cuts as mixed
    assert packs[1].meta["one_style_per_line"] is True
    assert main(["data", "pack", str(pages), "-o", str(tmp_path / "x.htrpack"), "--one-style-per-line"]) == 2


def test_training_reads_a_pack_like_any_dataset(tmp_path: Path) -> None:
    pages = _pages(tmp_path)
    out = _pack(tmp_path, pages, "--line-crop", "mixed")["path"]
    cfg = load_run_config(
        None,
        [
            f"data.dataset={out}",
            f"train.out_dir={tmp_path / 'run'}",
            "model.tiny=true",
            "preprocess.height=32",
            "augment.enabled=true",
            "train.batch_size=4",
            "train.max_steps=2",
            "train.eval_every=2",
            "train.progress=false",
            "train.threads=1",
            "train.device=cpu",
        ],
    )
    train(cfg)
    meta = read_meta(tmp_path / "run" / "best.safetensors")
    assert meta.data["train_lines"] == 4 * 4 and meta.data["val_lines"] == 2 * 4


def test_a_damaged_or_foreign_pack_is_a_one_line_error(tmp_path: Path) -> None:
    pages = _pages(tmp_path)
    good = _pack(tmp_path, pages)["path"]
    cases = {
        "text.htrpack": b"hello, I am not a zip archive",
        "empty.htrpack": b"",
        "cut.htrpack": good.read_bytes()[: good.stat().st_size // 2],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    # a valid archive whose description does not match its arrays
    with zipfile.ZipFile(good) as zf:
        meta = json.loads(str(np.load(zf.open("meta.npy"))))
    meta["splits"]["train"]["widths"][0] += 5
    lying = tmp_path / "lying.htrpack"
    arrays = dict(np.load(good))
    arrays["meta"] = np.array(json.dumps(meta))
    with lying.open("wb") as fh:
        np.savez_compressed(fh, **arrays)
    for name in [*cases, "lying.htrpack"]:
        with pytest.raises(DataError) as err:
            open_dataset(tmp_path / name)
        message = str(err.value)
        assert name in message and "\n" not in message
    # an archive holding a pickled object is refused, not unpickled
    evil = tmp_path / "evil.htrpack"
    with evil.open("wb") as fh:
        np.savez(fh, meta=np.array([{"format": "htrlab-pack"}], dtype=object))
    with pytest.raises(DataError, match="evil.htrpack"):
        read_pack(evil)


def test_pack_names_end_in_htrpack(tmp_path: Path) -> None:
    pages = _pages(tmp_path)
    assert main(["data", "pack", str(pages), "-o", str(tmp_path / "p.npz")]) == 2
