"""Text line segmentation of page, paragraph and photo images.

Two ways of finding the lines share the rest of the pipeline. ``method="learned"`` (the default) asks a small
trained network for each line's core, the band just above its baseline (``htrlab.segment.learned``; bundled
weights trained on the Hooker training pages and on rendered pages in many fonts). ``method="classical"``
needs no trained model: a standard smearing approach. Every constant is tied to the measured character
height, so both adapt to the image's resolution:

1. Illumination: the paper is estimated by a large median filter and divided out (photos with shading and
   stains become flat); ink level = 1 - paper-normalised grey. Otsu's threshold on it gives a binary image,
   from which specks and page-sized components (dark borders of photos) are removed.
2. Scale: the median height of the ink's connected components is the character height ``h``.
3. Skew: the angle (within ``max_skew`` degrees) that maximises the variance of the horizontal projection
   profile; the page is rotated upright for the next steps and the results rotated back.
4. Lines, learned: the ink level, scaled so that characters are 10 px high, goes through the network; each
   connected core at least ``min_line_chars`` character heights wide is a line, and every ink component goes
   to the core nearest to most of its pixels. Lines, classical: the ink is smeared with an anisotropic
   Gaussian (wide along the line, narrow across), the smear is thresholded into line blobs, and blobs taller
   than about two lines are split at the valleys of their horizontal profile; a blob holding two rows run
   together is cut along the deep valley of its row profile levelled along its slope. Each ink component is
   given to the blob that holds most of it. Either way, pieces of one row are then joined.
5. Geometry: a line's polygon follows the upper and lower envelope of its own ink (so a crop keeps the
   neighbours' ascenders and descenders out); its baseline is a straight fit through the lower edge of its
   detected core (learned), or of its ink's main body (classical, or a core too short to fit); reading order compares baselines where lines share columns (a line above another is read first)
   and reads lines side by side in one row left to right (``reading_order``).

Why not kraken's or eScriptorium's segmenters: kraken pulls torchvision, and neither ships as a package this
project can depend on offline; the learned detector here is 0.24 M parameters and trains on a CPU in 25 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from htrlab.data.images import ink_level, ink_map
from htrlab.data.layout import PageLayout, TextLine
from htrlab.data.linecrop import baseline_y
from htrlab.errors import ConfigError, DataError


@dataclass
class SegmentConfig:
    work_side: int = 1600  # the longer side is reduced to this many pixels for the analysis
    max_skew: float = 6.0  # degrees searched for the page's skew
    smear_x: float = 2.0  # horizontal smearing sigma, in character heights
    smear_y: float = 0.3  # vertical smearing sigma, in character heights
    min_line_chars: float = 1.5  # a line must be at least this many character heights wide
    pad: float = 0.1  # polygon padding around the ink, in character heights
    merge_gap: float = 8.0  # pieces of a row closer than this many character heights are one line
    # "learned": line cores found by the bundled line detector (htrlab.segment.learned), or by the one at
    # ``detector``; "classical": the smearing of steps 4 (no trained model)
    method: str = "learned"
    detector: str | None = None


def area_weighted_median(values: np.ndarray, areas: np.ndarray) -> float:
    """The value below which half the total area lies (components' sizes weighted by their ink, so that
    specks and broken strokes do not pull it down)."""
    order = np.argsort(values)
    cum = np.cumsum(areas[order])
    return float(values[order][np.searchsorted(cum, cum[-1] / 2)])


def _clean(binary: np.ndarray) -> tuple[np.ndarray, float]:
    """Drop specks and page-sized components; return the cleaned binary and the character height."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    h_img, w_img = binary.shape
    keep = np.zeros(n, dtype=bool)
    heights = []
    for i in range(1, n):
        _, _, w, h, area = stats[i]
        if area < 6 or (w > 0.6 * w_img and h > 0.3 * h_img) or (h > 0.5 * h_img):
            continue
        if min(h_img, w_img) >= 400 and w > 0.3 * w_img and h < 0.08 * w and h < 0.05 * h_img:
            # a rule, or a piece of the edge of a dark ground, across a page: merged into the nearest line it
            # made that line hold most of the page's ink, and the page was read as one line (htrlab.segment.read;
            # not in small images: a long flat stroke in a line crop is part of a word)
            continue
        keep[i] = True
        if area >= 15 and h >= 4:
            heights.append(h)
    cleaned = keep[labels].astype(np.uint8)
    char_h = float(np.median(heights)) if heights else 0.0
    return cleaned, char_h


def estimate_skew(binary: np.ndarray, max_deg: float) -> float:
    """The angle (degrees) whose horizontal projection profile has the largest variance."""
    small = binary
    scale = 600.0 / max(binary.shape)
    if scale < 1:
        small = cv2.resize(binary.astype(np.float32), None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    h, w = small.shape
    best, best_v = 0.0, -1.0
    for a in np.arange(-max_deg, max_deg + 1e-6, 0.5):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(a), 1.0)
        r = cv2.warpAffine(small.astype(np.float32), m, (w, h), flags=cv2.INTER_LINEAR)
        v = float(np.var(r.sum(1)))
        if v > best_v:
            best, best_v = float(a), v
    return best


def spacing_from_ink(upright: np.ndarray, char_h: float) -> float:
    """The distance between consecutive lines: the first peak of the autocorrelation of the horizontal
    projection profile, between 1.2 and 6 character heights (2 character heights when there is none)."""
    prof = upright.sum(1).astype(np.float64)
    prof -= prof.mean()
    lo, hi = int(1.2 * char_h), min(int(6 * char_h), len(prof) - 1)
    if hi <= lo + 2 or not prof.any():
        return 2.0 * char_h
    ac = np.correlate(prof, prof, mode="full")[len(prof) - 1 :]
    ac /= ac[0] if ac[0] else 1.0
    seg = ac[lo:hi]
    peaks = [
        i for i in range(1, len(seg) - 1) if seg[i] >= seg[i - 1] and seg[i] >= seg[i + 1] and seg[i] > 0.05
    ]
    if not peaks:
        return 2.0 * char_h
    return float(lo + peaks[0])


def _split_tall(blob: np.ndarray, char_h: float, typical: float) -> list[np.ndarray]:
    """Split a blob mask (its own box) taller than ~1.7 lines at the valleys of its horizontal profile."""
    h = blob.shape[0]
    if h < 1.6 * typical or typical <= 0:
        return [blob]
    prof = cv2.GaussianBlur(
        blob.sum(1).astype(np.float32).reshape(-1, 1), (1, 0), sigmaX=0.1, sigmaY=char_h * 0.3
    )
    prof = prof.ravel()
    n_lines = max(2, round(h / typical))
    cuts = []
    for k in range(1, n_lines):
        c = int(k * h / n_lines)
        lo, hi = max(1, int(c - 0.35 * typical)), min(h - 1, int(c + 0.35 * typical))
        if hi > lo:
            cuts.append(lo + int(np.argmin(prof[lo:hi])))
    parts, prev = [], 0
    for c in [*cuts, h]:
        part = np.zeros_like(blob)
        part[prev:c] = blob[prev:c]
        if part.any():
            parts.append(part)
        prev = c
    return parts


def _split_rows(
    blob: np.ndarray, ink: np.ndarray, char_h: float, typical: float, depth: int = 0
) -> list[np.ndarray]:
    """Split a blob mask (its own box) that holds two rows of writing run together, at any height.

    Lines written close together (or whose descenders and ascenders touch) smear into one blob less than
    :func:`_split_tall`'s 1.6 line spacings tall. The blob's own ``ink`` (same box) is levelled along the
    blob's slope and its row profile searched for two peaks at least 0.6 line spacings apart with a deep
    valley between them (below 30 % of the smaller peak), each side holding at least 12 % of the ink; the blob
    is cut along the sloping valley, and each part is searched again."""
    h, w = blob.shape
    ys, xs = np.nonzero(ink & blob)
    if depth > 3 or h < 1.2 * typical or typical <= 0 or len(xs) < 10 * char_h:
        return [blob]
    # the slope: a line through the median ink height of column bins (both rows move together)
    bin_w = max(2, round(2 * char_h))
    cx, cy = [], []
    for x0 in range(0, w, bin_w):
        sel = (xs >= x0) & (xs < x0 + bin_w)
        if sel.sum() >= 3:
            cx.append(x0 + bin_w / 2)
            cy.append(float(np.median(ys[sel])))
    slope = float(np.polyfit(cx, cy, 1)[0]) if len(cx) >= 3 else 0.0
    xc = w / 2
    yl = ys - slope * (xs - xc)
    off = int(np.floor(yl.min()))
    counts = np.bincount((yl - off).astype(np.int64)).astype(np.float32)
    prof: np.ndarray = cv2.GaussianBlur(
        counts.reshape(-1, 1), (1, 0), sigmaX=0.1, sigmaY=max(0.3 * char_h, 1.0)
    ).ravel()
    peaks = [
        i
        for i in range(1, len(prof) - 1)
        if prof[i] >= prof[i - 1] and prof[i] > prof[i + 1] and prof[i] > 0.15 * prof.max()
    ]
    best = None
    for a_i, a in enumerate(peaks):
        for b in peaks[a_i + 1 :]:
            if b - a < 0.6 * typical:
                continue
            v = a + int(np.argmin(prof[a:b]))
            depth_ok = prof[v] < 0.3 * min(prof[a], prof[b])
            upper = float(prof[:v].sum()) / float(prof.sum())
            if depth_ok and 0.12 <= upper <= 0.88 and (best is None or prof[v] < prof[best]):
                best = v
    if best is None:
        return [blob]
    yy, xx = np.mgrid[0:h, 0:w]
    above = (yy - slope * (xx - xc) - off) < best
    parts = []
    for side in (above, ~above):
        part = (blob & side).astype(np.uint8)
        if part.any():
            parts += _split_rows(part, ink, char_h, typical, depth + 1)
    return parts


def _merge_row_fragments(
    owner: np.ndarray, comp: np.ndarray, n_lines: int, spacing: float, char_h: float, gap: float
) -> np.ndarray:
    """Join pieces of one line that the smearing left apart (wide gaps between words): pieces whose ink
    centres lie within a third of the line spacing vertically and ``gap`` character heights horizontally.
    Returns the mapping from line labels to joined labels."""
    ys, xs = np.nonzero(owner[comp] > 0)
    if xs.size == 0:
        return np.arange(n_lines + 1)
    lab = owner[comp][ys, xs]
    info = {}
    for k in np.unique(lab):
        sel = lab == k
        info[int(k)] = (xs[sel].min(), xs[sel].max(), float(np.median(ys[sel])))
    parent = {k: k for k in info}

    def find(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    keys = sorted(info, key=lambda k: info[k][0])
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            ax0, ax1, ay = info[a]
            bx0, bx1, by = info[b]
            horizontal_gap = max(bx0 - ax1, ax0 - bx1, 0)
            if abs(ay - by) < spacing / 3 and horizontal_gap < gap * char_h:
                parent[find(b)] = find(a)
    mapping = np.arange(n_lines + 1)
    for k in info:
        mapping[k] = find(k)
    return mapping


def analysis_view(gray: np.ndarray, work_side: int) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Steps 1 and 2 at the analysis resolution (the longer side reduced to ``work_side``): the scale used,
    the ink level, the cleaned binary ink and the character height (0 when there is no ink)."""
    H, W = gray.shape
    scale = min(1.0, work_side / max(H, W))
    work = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else gray
    level = ink_level(work)
    binary, char_h = _clean(ink_map(work, level))
    return scale, level, binary, char_h


def segment_lines(gray: np.ndarray, cfg: SegmentConfig | None = None, source: str = "image") -> PageLayout:
    """Find the text lines of a grey page / paragraph / line image (see the module docstring)."""
    cfg = cfg or SegmentConfig()
    if cfg.method not in ("learned", "classical"):
        raise ConfigError(f"unknown segmentation method {cfg.method!r}; choose learned or classical")
    if gray.ndim != 2 or gray.size == 0:
        raise DataError(f"{source}: segmentation needs a non-empty grey image, got shape {gray.shape}")
    H, W = gray.shape
    scale, level, binary, char_h = analysis_view(gray, cfg.work_side)
    layout = PageLayout(W, H)
    if char_h <= 0 or not binary.any():
        return layout
    angle = estimate_skew(binary, cfg.max_skew)
    h, w = binary.shape
    rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    upright = cv2.warpAffine(binary, rot, (w, h), flags=cv2.INTER_NEAREST)
    inv = cv2.invertAffineTransform(rot)
    typical = spacing_from_ink(upright, char_h)
    cores = None
    if cfg.method == "learned":
        lab, n_masks, cores = _learned_lines(level, char_h, rot, cfg)
    else:
        lab, n_masks = _smeared_lines(upright, char_h, typical, cfg)
    nc, comp = cv2.connectedComponents(upright, connectivity=8)
    owner = np.zeros(nc, dtype=np.int32)
    flat_c, flat_l = comp.ravel(), lab.ravel()
    sel = (flat_c > 0) & (flat_l > 0)
    if sel.any():
        pair = flat_c[sel].astype(np.int64) * (n_masks + 1) + flat_l[sel]
        counts = np.bincount(pair, minlength=nc * (n_masks + 1)).reshape(nc, -1)
        owner = counts.argmax(1)
        owner[counts.max(1) == 0] = 0
    mapping = _merge_row_fragments(owner, comp, n_masks, typical, char_h, cfg.merge_gap)
    ink_owner = mapping[owner][comp]
    core_y, core_x, core_k = np.zeros(0, int), np.zeros(0, int), np.zeros(0, int)
    if cores is not None:
        core_y, core_x = np.nonzero(cores)
        core_k = mapping[cores[core_y, core_x]]
    pad = cfg.pad * char_h
    bin_w = max(2, round(char_h))
    found = []
    for k in range(1, n_masks + 1):
        ys, xs = np.nonzero(ink_owner == k)
        if len(xs) < 3 * char_h or xs.max() - xs.min() < cfg.min_line_chars * char_h:
            continue
        bins = range(int(xs.min()), int(xs.max()) + 1, bin_w)
        tops, bots, base, xb = [], [], [], []
        for x0 in bins:
            yy = ys[(xs >= x0) & (xs < x0 + bin_w)]
            if yy.size:
                tops.append(yy.min())
                bots.append(yy.max())
                base.append(np.percentile(yy, 85))
                xb.append(x0)
        b = np.array([np.array(xb) + bin_w / 2, base], dtype=np.float64).T
        if len(core_k):
            # the detector's baseline: the lower edge of the line's core, where it was trained to lie
            # (Hooker val pages: end-to-end CER 24.51 -> 24.36 % against the fit to the ink below)
            on = core_k == k
            edge = _lower_edge(core_y[on], core_x[on], bin_w)
            if len(edge) >= 3:
                b = edge
        coef = np.polyfit(b[:, 0], b[:, 1], 1) if len(b) >= 3 else np.array([0.0, b[:, 1].mean()])
        x_end = float(xs.max()) + 1
        bx = np.array([float(xs.min()), x_end])
        baseline = np.stack([bx, np.polyval(coef, bx)], 1)
        # envelopes over a sliding window of three bins, never thinner than the band from 1.2 character
        # heights above the baseline to 0.4 below it (the zone of the line's own letters)
        t_arr, b_arr = np.array(tops, float), np.array(bots, float)
        upper, lower = [], []
        for i, x0 in enumerate(xb):
            lo, hi = max(0, i - 1), min(len(xb), i + 2)
            yb = float(np.polyval(coef, x0 + bin_w / 2))
            top = min(t_arr[lo:hi].min(), yb - 1.2 * char_h) - pad
            bot = max(b_arr[lo:hi].max(), yb + 0.4 * char_h) + pad
            xc = min(x0 + bin_w, x_end)
            upper += [(x0, top), (xc, top)]
            lower += [(x0, bot), (xc, bot)]
        poly = np.array(upper + lower[::-1], dtype=np.float64)
        found.append((poly, baseline, len(xs)))

    def to_page(pts: np.ndarray) -> np.ndarray:
        p = (np.hstack([pts, np.ones((len(pts), 1))]) @ inv.T) / scale
        return np.clip(np.round(p), 0, [W - 1, H - 1]).astype(np.int32)

    lines = []
    for poly, baseline, ink in found:
        pp, bb = to_page(poly), to_page(baseline)
        x0, y0 = pp.min(0)
        x1, y1 = pp.max(0)
        lines.append(TextLine(pp, bb, (int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)), ink=int(ink)))
    layout.lines = reading_order(lines)
    for i, ln in enumerate(layout.lines, 1):
        ln.id = f"l{i}"
    layout.skew_degrees = -angle
    layout.char_height = char_h / scale
    return layout


def _lower_edge(ys: np.ndarray, xs: np.ndarray, bin_w: int) -> np.ndarray:
    """(x, y) of the lowest of the pixels (ys, xs) in each ``bin_w``-wide column bin that holds any (bin
    centres)."""
    if not len(xs):
        return np.zeros((0, 2))
    pts = []
    for x0 in range(int(xs.min()), int(xs.max()) + 1, bin_w):
        sel = (xs >= x0) & (xs < x0 + bin_w)
        if sel.any():
            pts.append((x0 + bin_w / 2, float(ys[sel].max())))
    return np.array(pts, dtype=np.float64)


def _smeared_lines(
    upright: np.ndarray, char_h: float, typical: float, cfg: SegmentConfig
) -> tuple[np.ndarray, int]:
    """Classical line masks (upright frame): the ink smeared along the lines and thresholded into blobs,
    blobs holding several lines split. Returns a label image (0: no line) and the number of labels."""
    h, w = upright.shape
    smear = cv2.GaussianBlur(
        upright.astype(np.float32), (0, 0), sigmaX=cfg.smear_x * char_h, sigmaY=max(cfg.smear_y * char_h, 0.8)
    )
    level = float(np.percentile(smear[upright > 0], 50)) * 0.35 if upright.any() else 0.0
    blobs = (smear > level).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(blobs, connectivity=8)
    line_masks: list[tuple[np.ndarray, int, int]] = []
    for i in range(1, n):
        x, y, bw, bh, _ = stats[i]
        if bw < cfg.min_line_chars * char_h:
            continue
        blob = (labels[y : y + bh, x : x + bw] == i).astype(np.uint8)
        blob_ink = upright[y : y + bh, x : x + bw]
        for tall_part in _split_tall(blob, char_h, typical):
            for part in _split_rows(tall_part, blob_ink, char_h, typical):
                line_masks.append((part, x, y))
    lab = np.zeros((h, w), dtype=np.int32)
    for k, (m, x, y) in enumerate(line_masks, 1):
        region = lab[y : y + m.shape[0], x : x + m.shape[1]]
        region[m > 0] = k
    return lab, len(line_masks)


def _learned_lines(
    level: np.ndarray, char_h: float, rot: np.ndarray, cfg: SegmentConfig
) -> tuple[np.ndarray, int, np.ndarray]:
    """Line masks from the learned detector's cores (upright frame): each core at least ``min_line_chars``
    character heights wide is a line, and every pixel within two character heights of a core belongs to the
    nearest one (so a word's ascenders and descenders go with its own line's core). Returns a label image
    (0: no line), the number of labels and the cores labelled alike."""
    from htrlab.segment.learned import load_detector

    det = load_detector(cfg.detector)
    h, w = level.shape
    prob = cv2.warpAffine(det.cores(level, char_h), rot, (w, h), flags=cv2.INTER_LINEAR)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(
        (prob > det.threshold).astype(np.uint8), connectivity=8
    )
    keep = np.zeros(n, np.int32)
    k = 0
    for i in range(1, n):
        if stats[i, 2] >= cfg.min_line_chars * char_h and stats[i, 4] >= char_h:
            k += 1
            keep[i] = k
    cores = keep[labels]
    if k == 0:
        return cores, 0, cores
    # nearest core for every pixel (Voronoi cells of the cores), cut off at two character heights
    src = np.where(cores > 0, 0, 255).astype(np.uint8)
    dist, near = cv2.distanceTransformWithLabels(src, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    to_core = np.zeros(int(near.max()) + 1, np.int32)
    on = cores > 0
    to_core[near[on]] = cores[on]
    lab = to_core[near]
    lab[dist > 2.0 * char_h] = 0
    return lab, k, cores


def _baseline_y(line: TextLine, x: float) -> float:
    """The line's baseline height at ``x`` (extrapolated along its end segments)."""
    return float(baseline_y(line.baseline, x))


def _precedes(a: TextLine, b: TextLine) -> bool:
    """Whether ``a`` must be read before ``b``: above it where they share columns, or left of it in one row."""
    ax0, ax1 = a.box[0], a.box[0] + a.box[2]
    bx0, bx1 = b.box[0], b.box[0] + b.box[2]
    x_overlap = min(ax1, bx1) - max(ax0, bx0)
    if x_overlap > 0.1 * min(a.box[2], b.box[2]):  # stacked: compare baselines where both lines are
        mid = (max(ax0, bx0) + min(ax1, bx1)) / 2
        return _baseline_y(a, mid) < _baseline_y(b, mid)
    # side by side: one row if each baseline, carried across, passes through the other line's body
    ya, yb = _baseline_y(a, (bx0 + bx1) / 2), _baseline_y(b, (ax0 + ax1) / 2)
    same_row = b.box[1] <= ya <= b.box[1] + b.box[3] or a.box[1] <= yb <= a.box[1] + a.box[3]
    return same_row and ax1 <= bx0 + 0.1 * min(a.box[2], b.box[2])


def reading_order(lines: list[TextLine]) -> list[TextLine]:
    """Lines in reading order: a line comes before another if it lies above it where they share columns, or
    left of it in the same row; lines without such a relation are taken top to bottom.

    A topological sort of that partial order (the approach of Breuel's reading-order rules, restricted to what
    a letter or a page of lines needs). Comparing baselines where two lines overlap, rather than their boxes,
    keeps sloping lines whose boxes overlap in order. Written here because the libraries that do this (kraken)
    pull torchvision and trained models; it is a few lines over the segmenter's own geometry.
    """
    n = len(lines)
    if n < 2:
        return list(lines)
    key = [float(np.mean(ln.baseline[:, 1])) for ln in lines]
    before = [[False] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i != j and _precedes(lines[i], lines[j]) and not before[j][i]:
                before[i][j] = True
    indeg = [sum(before[i][j] for i in range(n)) for j in range(n)]
    done = [False] * n
    order: list[int] = []
    for _ in range(n):
        free = [j for j in range(n) if not done[j] and indeg[j] == 0]
        # a cycle (contradictory relations in a tangled layout) is broken by the topmost remaining line
        pool = free or [j for j in range(n) if not done[j]]
        j = min(pool, key=lambda k: (key[k], lines[k].box[0]))
        done[j] = True
        order.append(j)
        for k in range(n):
            if before[j][k]:
                indeg[k] -= 1
    return [lines[k] for k in order]
