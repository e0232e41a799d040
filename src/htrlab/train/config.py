"""The training run configuration: one dataclass per section, saved with every run and checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from htrlab.data.augment import AugmentConfig
from htrlab.data.linecrop import LINE_CROPS, TRAIN_CROPS, crop_style
from htrlab.data.preprocess import PreprocessConfig
from htrlab.errors import ConfigError


@dataclass
class ExtraData:
    """A further training set mixed into the main one (synthetic lines, printed text, another collection)."""

    dataset: str = ""  # PATH or FORMAT:PATH
    split: str = "train"  # "" = every line of the dataset
    max_lines: int = 0  # 0 = all; otherwise a seeded random subset of this many lines
    # how this set's PAGE-XML/ALTO lines are cut ("" = data.line_crop)
    line_crop: str = ""

    def __post_init__(self) -> None:
        if not self.dataset:
            raise ConfigError("data.extra_train: every entry needs a dataset (PATH or FORMAT:PATH)")
        if self.line_crop:
            try:
                self.line_crop = crop_style(self.line_crop, TRAIN_CROPS)
            except ConfigError as exc:
                raise ConfigError(f"data.extra_train: {exc}") from None
        if self.max_lines < 0:
            raise ConfigError(f"data.extra_train: max_lines must be >= 0, got {self.max_lines}")


@dataclass
class DataSection:
    dataset: str = ""  # PATH or FORMAT:PATH (see `htrlab data check`)
    train_split: str = "train"
    val_split: str = "val"
    on_error: str = "error"  # "skip" records and reports bad samples (unreadable, too narrow, ...) instead
    drop_empty: bool = True  # lines with an empty transcription are left out (and counted in the log)
    max_train_lines: int = 0  # 0 = all; otherwise the first N (for quick experiments)
    max_val_lines: int = 0
    # how lines of PAGE-XML/ALTO pages are cut out (htrlab.data.linecrop.cut_line): "band" around the baseline,
    # straightened; "outline" masked to paper; the outline's "box"; a tight "ink" box; or "mixed": each
    # training line prepared in every style, crop_variants randomly varied cuts of each (margins, paper tone),
    # one of them drawn at random each epoch, and validation on every style's plain cut
    line_crop: str = "mixed"
    # 1: four cuts of every line held in memory (the Hooker mixed-crop run at 96 px: 6.9 GB resident);
    # each further variant adds four cuts of every line more
    crop_variants: int = 1
    # with "mixed": how often each style is drawn, relative ({} = every style alike), e.g.
    # {band: 1, outline: 2}; a style not named weighs 1
    crop_weights: dict[str, float] = field(default_factory=dict)
    cache_dir: str = ""  # preprocessed-line cache; "" = $HTRLAB_CACHE or ~/.cache/htrlab
    # further training sets mixed into every epoch; validation stays on the main dataset
    extra_train: list[ExtraData] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.line_crop = crop_style(self.line_crop, TRAIN_CROPS)
        if not 1 <= self.crop_variants <= 16:
            raise ConfigError(f"data.crop_variants must be in 1..16, got {self.crop_variants}")
        for name, weight in self.crop_weights.items():
            if name not in LINE_CROPS:
                raise ConfigError(
                    f"data.crop_weights: unknown line crop {name!r}; choose from {', '.join(LINE_CROPS)}"
                )
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
                raise ConfigError(f"data.crop_weights.{name} must be a number above 0, got {weight!r}")
        mixed = self.line_crop == "mixed" or any(
            getattr(e, "line_crop", "") == "mixed" for e in self.extra_train
        )
        if self.crop_weights and not mixed:
            raise ConfigError("data.crop_weights weigh the styles of mixed cuts: set data.line_crop: mixed")


@dataclass
class ModelSection:
    name: str = "htr-jand"  # a registered model, see `htrlab models`
    params: dict[str, Any] = field(default_factory=dict)  # overrides of the model's config dataclass
    tiny: bool = False  # start from the model's tiny test configuration
    # warm start: an htrlab checkpoint of the same model whose weights start this run (fine-tuning), or
    # "default" for the bundled default model; its characters are kept and characters new in the training
    # text get fresh output rows
    init_from: str = ""


@dataclass
class TrainSection:
    out_dir: str = "runs/htr-jand"
    seed: int = 0
    epochs: int = 100
    max_steps: int = 0  # 0 = no step limit
    time_budget_min: float = 0.0  # stop after this much training time (0 = none); the schedule uses it
    batch_size: int = 16
    max_pixels: int = 0  # also cap padded pixels per batch (0 = no cap)
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_steps: int = 300
    schedule: str = "cosine"  # cosine | constant (after warm-up)
    min_lr_ratio: float = 0.05  # cosine floor as a fraction of lr
    clip_grad: float = 5.0
    eval_every: int = 0  # steps between validations (0 = once per epoch)
    eval_batch_size: int = 32
    train_eval_lines: int = 200  # training lines re-decoded at each validation, to show over-fitting
    patience: int = 10  # validations without improvement before stopping (0 = never stop early)
    log_every: int = 20
    threads: int = 0  # torch CPU threads (0 = torch's default)
    device: str = "auto"  # auto | cpu | cuda
    distill_from: str = ""  # teacher checkpoint: train with knowledge distillation from its frame posteriors
    distill_temperature: float = 2.0  # softening of teacher and student posteriors for the KL term
    distill_weight: float = 0.5  # loss = (1 - w) * CTC(labels) + w * T^2 * KL(teacher || student)
    # > 0: keep an exponential moving average of the weights with this decay per step (e.g. 0.999: about the
    # last 1,000 steps); validation, best/last checkpoints and early stopping use the averaged weights, and
    # the log also reports the raw weights' val CER. 0 = off.
    ema: float = 0.0
    # removed options, at the value older files hold them (htrlab.config.from_dict)
    RETIRED: ClassVar[dict[str, Any]] = {"ctc_entropy": 0.0}
    progress: bool = True
    # convolution weights and activations in channels-last layout: the same arithmetic, faster convolutions
    # (ppocrv5-rec: 2.14 -> 1.49 s per forward+backward of 16 lines 600 px wide on the 2-core CPU). CPU only:
    # on an H100 cuDNN ran ppocrv5-rec's depthwise convolutions 30x slower in this layout, so GPUs ignore it.
    channels_last: bool = True
    # background processes that augment and collate the next batches while the model trains (0 = in the
    # training process). The batches are the same for any number: each one's augmentation is seeded by its
    # (seed, epoch, batch) position. Worth it on a GPU, where augmentation would otherwise starve the device.
    workers: int = 0
    # keep the prepared training lines on the training device and augment whole batches there
    # (htrlab.data.augment_torch) instead of line by line in this process or DataLoader workers: "auto" = on
    # CUDA when the augmentation can run there (no augment.damage, no square inputs); true / false
    resident_data: str = "auto"
    # arithmetic of the forward pass: fp32, or bf16 (torch.autocast; the CTC loss stays in float32). bf16 is
    # for GPUs with bfloat16 units (Ampere and later); on a CPU without them it is slower, not faster.
    precision: str = "fp32"

    def __post_init__(self) -> None:
        if self.schedule not in ("cosine", "constant"):
            raise ConfigError(f"train.schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.batch_size < 1:
            raise ConfigError(f"train.batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.distill_weight <= 1.0 or self.distill_temperature <= 0:
            raise ConfigError("train.distill_weight must be in [0, 1] and train.distill_temperature > 0")
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"train.ema must be in [0, 1) (0 = off), got {self.ema}")
        if str(self.resident_data).lower() not in ("auto", "true", "false"):
            raise ConfigError(f"train.resident_data must be auto, true or false, got {self.resident_data!r}")
        if self.workers < 0:
            raise ConfigError(f"train.workers must be >= 0, got {self.workers}")
        if self.precision not in ("fp32", "bf16"):
            raise ConfigError(f"train.precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.lr <= 0:
            raise ConfigError(f"train.lr must be > 0, got {self.lr}")


@dataclass
class RunConfig:
    data: DataSection = field(default_factory=DataSection)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelSection = field(default_factory=ModelSection)
    train: TrainSection = field(default_factory=TrainSection)
