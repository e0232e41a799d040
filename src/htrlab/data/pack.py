"""Packs: a dataset's lines preprocessed once, quantised to 4 bits and compressed into one file small enough to
carry to a GPU machine for a short window (``htrlab data pack``), read by ``htrlab train`` like any dataset.

A pack is a NumPy ``.npz`` archive (read with ``allow_pickle=False``: arrays and one JSON string, never
code): ``meta`` (JSON: format version, the preprocessing it was made with, where it came from, and per split the
line ids, texts, documents, raw-image fingerprints and widths) and one ``lines_<split>`` array per split, the
split's preprocessed images (ink = 255) concatenated row-major, two 4-bit pixels per byte. Pixels come back as
multiples of 17, within 8 grey levels of the original; lines cut in several crop styles keep the ``~style``
ids that let training draw one cut of each line per epoch.

No library packs variable-width image lists with their labels in a format that loads without pickles, so
this is written here on top of ``np.savez_compressed``.
"""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from htrlab.data.prepared import PreparedLines
from htrlab.data.preprocess import PreprocessConfig
from htrlab.data.sample import LineSample
from htrlab.errors import ConfigError, DataError

PACK_SUFFIX = ".htrpack"
PACK_VERSION = 1
MAX_UNPACKED_BYTES = 8 << 30  # an archive that says it unpacks to more than this is refused unread


def quantize4(flat: np.ndarray) -> np.ndarray:
    """uint8 pixels -> 4-bit levels packed two per byte (an odd count gets a zero level at the end)."""
    q = ((flat.astype(np.uint16) * 15 + 127) // 255).astype(np.uint8)
    if len(q) % 2:
        q = np.append(q, np.uint8(0))
    return (q[0::2] << 4) | q[1::2]


def dequantize4(packed: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` pixels of :func:`quantize4`'s output as uint8 (levels times 17)."""
    out = np.empty(2 * len(packed), np.uint8)
    out[0::2] = packed >> 4
    out[1::2] = packed & 15
    return out[:n] * np.uint8(17)


@dataclass
class PackedLine(LineSample):
    """A line whose preprocessed image travels in a pack: used as it is when a run preprocesses the way the
    pack was made, else rebuilt as a grayscale line image and preprocessed again."""

    image: np.ndarray | None = None  # uint8 (height, W), ink = 255, as :func:`prepare_lines` makes them
    made_with: PreprocessConfig | None = None
    fingerprint: str = ""

    def load_image(self) -> np.ndarray:
        if self.image is None or self.made_with is None:
            raise DataError(f"{self.image_path} line {self.id}: no image in the pack")
        pad = self.made_with.pad
        ink = self.image[:, pad : self.image.shape[1] - pad] if self.image.shape[1] > 2 * pad else self.image
        return (255 - ink).astype(np.uint8)

    def prepared_for(self, cfg: PreprocessConfig) -> np.ndarray | None:
        """The stored model input when ``cfg`` is how the pack was made, else ``None``."""
        return self.image if cfg == self.made_with else None


@dataclass
class Pack:
    path: Path
    meta: dict[str, Any]
    preprocess: PreprocessConfig
    splits: dict[str, PreparedLines] = field(default_factory=dict)

    def samples(self) -> list[PackedLine]:
        out = []
        for split, lines in self.splits.items():
            for i, sid in enumerate(lines.ids):
                out.append(
                    PackedLine(
                        id=sid,
                        text=lines.texts[i],
                        image_path=self.path,
                        doc_id=lines.doc_ids[i] if lines.doc_ids else "",
                        split=split,
                        image=lines.images[i],
                        made_with=self.preprocess,
                        fingerprint=lines.fingerprints[i],
                    )
                )
        return out


def write_pack(
    path: str | Path, splits: dict[str, PreparedLines], cfg: PreprocessConfig, about: dict[str, Any]
) -> dict[str, Any]:
    """Write ``splits`` (prepared with ``cfg``) as a pack at ``path``; ``about`` goes into its meta (where the
    lines came from, how they were cut). Returns a summary: lines per split, bytes."""
    out = Path(path)
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {
        "format": "htrlab-pack",
        "version": PACK_VERSION,
        "bits": 4,
        "preprocess": asdict(cfg),
        "made": time.strftime("%Y-%m-%d"),
        **about,
        "splits": {},
    }
    for name, lines in splits.items():
        if not name.isidentifier():
            raise DataError(f"{out}: split name {name!r} cannot be stored in a pack")
        heights = {im.shape[0] for im in lines.images}
        if len(heights) > 1:
            raise DataError(f"{out}: split {name} holds images of several heights {sorted(heights)}")
        flat = (
            np.concatenate([im.reshape(-1) for im in lines.images]) if lines.images else np.zeros(0, np.uint8)
        )
        arrays[f"lines_{name}"] = quantize4(flat)
        meta["splits"][name] = {
            "ids": lines.ids,
            "texts": lines.texts,
            "doc_ids": lines.doc_ids or [""] * len(lines),
            "fingerprints": lines.fingerprints,
            "widths": [int(w) for w in lines.widths],
            "pixels": int(flat.size),
        }
    meta["skipped"] = [m for lines in splits.values() for m in lines.skipped]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with tmp.open("wb") as fh:  # a file object: numpy would add ".npz" to a file name
        np.savez_compressed(fh, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
    tmp.replace(out)
    return {
        "output": str(out),
        "bytes": out.stat().st_size,
        "lines": {k: len(v) for k, v in splits.items()},
        "height": cfg.height,
    }


def _refuse(path: Path, problem: str) -> DataError:
    return DataError(f"{path}: not a usable htrlab pack ({problem})")


def read_pack(path: str | Path) -> Pack:
    """Read a pack written by :func:`write_pack`.

    Raises:
        DataError: (one line, naming the file) for a file that is not a pack, is damaged, is of another
            version, or whose arrays do not match its own description.
    """
    p = Path(path)
    try:
        with zipfile.ZipFile(p) as zf:
            size = sum(i.file_size for i in zf.infolist())
        if size > MAX_UNPACKED_BYTES:
            raise _refuse(p, f"it says it unpacks to {size} bytes, more than {MAX_UNPACKED_BYTES}")
        with np.load(p, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"][()]))
            if not isinstance(meta, dict) or meta.get("format") != "htrlab-pack":
                raise _refuse(p, "no htrlab pack description")
            if meta.get("version") != PACK_VERSION:
                raise _refuse(p, f"format version {meta.get('version')!r}; this htrlab reads {PACK_VERSION}")
            cfg = PreprocessConfig(**meta["preprocess"])
            splits = {}
            for name, d in meta["splits"].items():
                widths = [int(w) for w in d["widths"]]
                n = len(d["ids"])
                if not (len(d["texts"]) == len(d["doc_ids"]) == len(d["fingerprints"]) == len(widths) == n):
                    raise _refuse(p, f"split {name}: its lists differ in length")
                if min(widths, default=1) < 1 or sum(widths) * cfg.height != int(d["pixels"]):
                    raise _refuse(p, f"split {name}: widths do not match its pixel count")
                packed = z[f"lines_{name}"]
                if packed.dtype != np.uint8 or packed.ndim != 1 or len(packed) != (int(d["pixels"]) + 1) // 2:
                    raise _refuse(p, f"split {name}: image data of the wrong size or type")
                flat = dequantize4(packed, int(d["pixels"]))
                images, off = [], 0
                for w in widths:
                    images.append(flat[off : off + w * cfg.height].reshape(cfg.height, w))
                    off += w * cfg.height
                splits[name] = PreparedLines(
                    list(map(str, d["ids"])),
                    list(map(str, d["texts"])),
                    images,
                    list(map(str, d["fingerprints"])),
                    list(map(str, d["doc_ids"])),
                )
    except DataError:
        raise
    except FileNotFoundError as exc:
        raise DataError(f"{p}: no such pack") from exc
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        ConfigError,
        zipfile.BadZipFile,
        EOFError,
    ) as exc:
        raise _refuse(p, f"{type(exc).__name__}: {exc}") from exc
    return Pack(p, meta, cfg, splits)
