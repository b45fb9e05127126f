"""One training run: a short, plain SGD (or AdamW) loop with the whole dataset on the device.

Randomness comes from three generators spawned from the run's seed, one each for parameter
initialisation, data order and augmentation. Two architectures trained with the same seed therefore
see the same minibatches in the same order with the same crops and flips, which is what a paired
comparison needs.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gwas_models.data import ImageDataset
from gwas_models.errors import InputError

if TYPE_CHECKING:  # batched.py builds on this module
    from gwas_models.training.batched import BatchedModel

Schedule = Literal["cosine", "step", "constant"]
Optimizer = Literal["sgd", "adamw"]
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
Augment = Literal["none", "crop", "crop_flip"]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of a run (all recorded in the run's provenance).

    Attributes
    ----------
    epochs, batch_size : int
    lr, momentum, weight_decay : float
        SGD with (Nesterov-free) momentum and L2 weight decay; with ``optimizer="adamw"``, AdamW
        with ``betas=(momentum, 0.999)`` and decoupled weight decay.
    optimizer : {"sgd", "adamw"}
        SGD (the paper's, and the CNNs' usual recipe) or AdamW (Loshchilov & Hutter 2019), which
        vision transformers need: trained with SGD from scratch on small data they stay near chance.
    schedule : {"cosine", "step", "constant"}
        Learning-rate schedule per step; ``step`` divides by 10 at 50% and 75% of training.
    warmup_epochs : float
        Linear warm-up from 0 over this many epochs (0 for none).
    augment : {"none", "crop", "crop_flip"}
        Random translation by up to ``crop_padding`` pixels (zero padding), plus horizontal flips.
    crop_padding : int
    early_epoch : int or None
        Epoch of ``el2n`` and ``grand`` (None: one eighth of training, at least epoch 2; see
        :func:`gwas_models.scores.default_early_epoch`).
    vog_checkpoints : int or None
        Number of VoG checkpoints spread over training (None: every epoch end, as the paper's code).
    eval_batch_size : int
    """

    epochs: int = 30
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    optimizer: Optimizer = "sgd"
    schedule: Schedule = "cosine"
    warmup_epochs: float = 1.0
    augment: Augment = "crop"
    crop_padding: int = 1
    early_epoch: int | None = None
    vog_checkpoints: int | None = None
    eval_batch_size: int = 1024

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise InputError(f"epochs must be at least 1, got {self.epochs}", parameter="epochs")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be at least 1, got {self.batch_size}", parameter="batch_size")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"lr must be a positive number, got {self.lr}", parameter="lr")
        if not 0 <= self.momentum < 1:
            raise InputError(f"momentum must lie in [0, 1), got {self.momentum}", parameter="momentum")
        if self.weight_decay < 0:
            raise InputError(f"weight_decay must be non-negative, got {self.weight_decay}", parameter="weight_decay")
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if self.schedule not in ("cosine", "step", "constant"):
            raise InputError(f"unknown schedule {self.schedule!r}; valid: cosine, step, constant")
        if self.augment not in ("none", "crop", "crop_flip"):
            raise InputError(f"unknown augmentation {self.augment!r}; valid: none, crop, crop_flip")
        if self.crop_padding < 0:
            raise InputError(f"crop_padding must be non-negative, got {self.crop_padding}", parameter="crop_padding")
        if self.early_epoch is not None and not 1 <= self.early_epoch <= self.epochs:
            raise InputError(f"early_epoch must lie in 1..{self.epochs}, got {self.early_epoch}", parameter="early_epoch")
        if self.vog_checkpoints is not None and self.vog_checkpoints < 2:
            raise InputError(f"vog_checkpoints must be at least 2, got {self.vog_checkpoints}", parameter="vog_checkpoints")

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, TrainConfig] = {
    # Tuned on digits: resnet20 reaches about 98% test accuracy in 30 epochs.
    "digits": TrainConfig(),
    # The paper's CIFAR-10 protocol: SGD, 160 epochs, crop + flip, step schedule (He et al. 2016).
    "paper": TrainConfig(
        epochs=160,
        batch_size=128,
        lr=0.1,
        momentum=0.9,
        weight_decay=5e-4,
        schedule="step",
        warmup_epochs=0.0,
        augment="crop_flip",
        crop_padding=4,
        early_epoch=20,
        vog_checkpoints=None,  # every epoch end, as the paper's code
        eval_batch_size=1024,
    ),
}


def preset(name: str, **overrides) -> TrainConfig:
    """A preset with some fields replaced (``None`` values are ignored)."""
    if name not in PRESETS:
        raise InputError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return replace(PRESETS[name], **changes)


@dataclass(frozen=True)
class SeedStreams:
    """Independent seeds for initialisation, data order and augmentation, spawned from one seed."""

    seed: int
    init: int = field(init=False)
    order: int = field(init=False)
    augment: int = field(init=False)

    def __post_init__(self) -> None:
        children = np.random.SeedSequence(self.seed).spawn(3)
        init, order, augment = (int(c.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)) for c in children)
        object.__setattr__(self, "init", init)
        object.__setattr__(self, "order", order)
        object.__setattr__(self, "augment", augment)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then MPS, then the CPU; an unavailable device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise InputError("device 'cuda' is not available: no CUDA device found")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise InputError("device 'mps' is not available: no MPS device found")
    if name not in ("cpu", "cuda", "mps"):
        raise InputError(f"unknown device {name!r}; valid: auto, cpu, cuda, mps")
    return torch.device(name)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator


@dataclass
class DeviceData:
    """The training and test sets as normalised tensors on the device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int

    @classmethod
    def from_dataset(cls, dataset: ImageDataset, device: torch.device) -> "DeviceData":
        # Per-channel standardisation with training-set statistics.
        mean = dataset.x_train.mean(axis=(0, 2, 3), keepdims=True)
        std = dataset.x_train.std(axis=(0, 2, 3), keepdims=True) + 1e-6
        to = lambda a, dtype=torch.float32: torch.as_tensor(a, dtype=dtype).to(device)  # noqa: E731
        return cls(
            x_train=to((dataset.x_train - mean) / std),
            y_train=to(dataset.y_train, torch.int64),
            x_test=to((dataset.x_test - mean) / std),
            y_test=to(dataset.y_test, torch.int64),
            n_classes=dataset.n_classes,
        )


def augment_batch(x: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Random translation (zero padding) and optional horizontal flip, vectorised on the device."""
    if config.augment == "none":
        return x
    offsets, flip = draw_augmentation(len(x), config, generator, x.device)
    return apply_augmentation(x, config, offsets, flip)


def draw_augmentation(
    n: int, config: TrainConfig, generator: torch.Generator, device: torch.device
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """The random draws of :func:`augment_batch` for ``n`` images, in the order it makes them.

    Parameters
    ----------
    n : int
        Number of images.
    config : TrainConfig
        Its ``augment`` and ``crop_padding`` decide what is drawn.
    generator : torch.Generator
        The run's augmentation generator, on ``device``.
    device : torch.device

    Returns
    -------
    offsets : int64 tensor (2, n) or None
        Row and column offsets of each crop into the padded image (None without cropping).
    flip : bool tensor (n,) or None
        Whether each image is mirrored (None without flipping).
    """
    offsets = flip = None
    if config.augment == "none":
        return offsets, flip
    pad = config.crop_padding
    if pad > 0:
        offsets = torch.randint(0, 2 * pad + 1, (2, n), device=device, generator=generator)
    if config.augment == "crop_flip":
        flip = torch.rand(n, device=device, generator=generator) < 0.5
    return offsets, flip


def apply_augmentation(
    x: torch.Tensor, config: TrainConfig, offsets: torch.Tensor | None, flip: torch.Tensor | None
) -> torch.Tensor:
    """Crop and flip the images ``x`` (n, c, h, w) as drawn by :func:`draw_augmentation`.

    Drawing and applying are apart so that K replicates, each with its own generator, draw as
    they would alone and are then augmented in one batched pass.
    """
    n, _, height, width = x.shape
    if offsets is not None:
        pad = config.crop_padding
        padded = F.pad(x, (pad, pad, pad, pad))
        rows = offsets[0][:, None] + torch.arange(height, device=x.device)
        cols = offsets[1][:, None] + torch.arange(width, device=x.device)
        batch = torch.arange(n, device=x.device)[:, None, None]
        # Advanced indexing gives (n, height, width, channels); move channels back.
        x = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip is not None:
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x.contiguous()


def augment_replicates(x: torch.Tensor, config: TrainConfig, generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Augment the minibatches of K replicates at once, each with its own generator.

    Parameters
    ----------
    x : tensor (K, B, c, h, w)
        Replicate k's minibatch is ``x[k]``.
    config : TrainConfig
    generators : sequence of K torch.Generator
        Replicate k's augmentation generator: it makes the same draws as :func:`augment_batch`
        would for ``x[k]`` alone, so replicate k gets the same crops and flips as a run alone.

    Returns
    -------
    tensor (K, B, c, h, w)
    """
    if config.augment == "none":
        return x
    n_replicates, batch = x.shape[:2]
    draws = [draw_augmentation(batch, config, generator, x.device) for generator in generators]
    if n_replicates == 1:
        # A run alone: its minibatch keeps the memory layout augment_batch gives it (with one
        # channel, the crop leaves channels-last strides), so the same kernels give the same bits.
        return apply_augmentation(x[0], config, *draws[0])[None]
    offsets = None if draws[0][0] is None else torch.cat([d[0] for d in draws], dim=1)
    flip = None if draws[0][1] is None else torch.cat([d[1] for d in draws])
    flat = apply_augmentation(x.reshape(n_replicates * batch, *x.shape[2:]), config, offsets, flip)
    return flat.view(x.shape)


def learning_rate_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """Multiplier of the base learning rate at a given optimizer step."""
    total = config.epochs * steps_per_epoch
    warmup = config.warmup_epochs * steps_per_epoch
    if warmup > 0 and step < warmup:
        return min(1.0, (step + 1) / warmup)
    progress = step / total
    if config.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if config.schedule == "step":
        return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
    return 1.0


def evaluate_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Accuracy in eval mode (NaN for an empty set)."""
    return evaluate_replicates(OneRun(model), x, y, batch_size)[0]


EpochCallback = Callable[[int, float], None]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer of ``config`` over the model's parameters."""
    if config.optimizer == "adamw":
        return torch.optim.AdamW(
            model.parameters(), lr=config.lr, betas=(config.momentum, 0.999), weight_decay=config.weight_decay
        )
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def train(
    model: nn.Module,
    data: DeviceData,
    config: TrainConfig,
    streams: SeedStreams,
    recorder=None,
    on_epoch: EpochCallback | None = None,
) -> dict:
    """Train ``model`` in place; return ``{"test_accuracy", "train_accuracy", "wall_time_s"}``.

    Parameters
    ----------
    recorder : ScoreRecorder, optional
        Fed every minibatch's logits and the model at each epoch end. A recorder with
        ``needs_pre_step`` also sees the model before each step (``before_step``: an eval-mode pass
        over the unaugmented minibatch, for the paper's forgetting).
    on_epoch : callable(epoch, running_train_accuracy), optional
        Progress hook.

    Notes
    -----
    No step reads a device value on the host (on a GPU, the loop never waits for the device): the
    running accuracy stays on the device and is read once per epoch.
    """
    # One run is the loop of K replicates with K = 1: the same operations, in the same order.
    single_recorder = None if recorder is None else _OneRunRecorder(recorder, model)
    per_epoch = None if on_epoch is None else (lambda epoch, accuracies: on_epoch(epoch, accuracies[0]))
    (result,) = train_replicates(OneRun(model), data, config, [streams], recorder=single_recorder, on_epoch=per_epoch)
    return result


class OneRun(nn.Module):
    """An ordinary model seen as a batched model of one replicate: input (1, B, ...), logits (1, B, C).

    What lets the loop of K replicates (:func:`train_replicates`) and the score recorder take a
    single run's model.
    """

    n_replicates = 1

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x[0])[None]


class _OneRunRecorder:
    """A recorder of one run fed by the loop of K replicates: it gets the run's own model and
    minibatches of shape (B,), as from any single-run loop."""

    def __init__(self, recorder, model: nn.Module) -> None:
        self.recorder = recorder
        self.model = model
        self.needs_pre_step = getattr(recorder, "needs_pre_step", False)

    def before_step(self, model: nn.Module, example_ids: torch.Tensor) -> None:
        self.recorder.before_step(self.model, example_ids[0])

    def observe(self, example_ids: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        self.recorder.observe(example_ids[0], logits[0], targets[0])

    def end_epoch(self, model: nn.Module) -> None:
        self.recorder.end_epoch(self.model)


ReplicateEpochCallback = Callable[[int, list], None]


def evaluate_replicates(model: BatchedModel, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> list[float]:
    """Each replicate's accuracy on ``(x, y)`` in eval mode (NaN for an empty set).

    One host read at the end: the counts stay on the device until then.
    """
    if len(y) == 0:
        return [float("nan")] * model.n_replicates
    was_training = model.training
    model.eval()
    correct = torch.zeros(model.n_replicates, dtype=torch.int64, device=y.device)
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            correct += (model(xb.expand(model.n_replicates, *xb.shape)).argmax(2) == yb).sum(1)
    model.train(was_training)
    return (correct.double() / len(y)).tolist()


def train_replicates(
    model: BatchedModel,
    data: DeviceData,
    config: TrainConfig,
    streams: Sequence[SeedStreams],
    recorder=None,
    on_epoch: ReplicateEpochCallback | None = None,
) -> list[dict]:
    """Train K replicates in place, each as :func:`~gwas_models.training.train.train` would alone.

    Replicate k draws its data order and its crops and flips from generators seeded with
    ``streams[k]``, exactly as a run alone with that seed; all share the learning-rate schedule.
    The loss is the sum of the replicates' mean cross-entropies, so each replicate's gradient is
    its own, and the optimizer (SGD with momentum and weight decay, or AdamW) updates every
    parameter element on its own, so no replicate's step depends on another's.

    Nothing in a step reads a device value on the host: running accuracies are counted on the
    device and read once per epoch.

    Parameters
    ----------
    model : BatchedModel
        From :func:`batch_replicates` or :func:`build_batched`, on ``data``'s device.
    data : DeviceData
    config : TrainConfig
    streams : sequence of K SeedStreams
        The runs' seed streams, in replicate order.
    recorder : optional
        A score recorder for K replicates: fed ``before_step(model, example_ids)`` when it
        ``needs_pre_step``, ``observe(example_ids, logits, targets)`` with example ids and targets
        of shape (K, B) and logits (K, B, n_classes), and ``end_epoch(model)``.
    on_epoch : callable(epoch, running_train_accuracies), optional
        Progress hook, given a list of K accuracies.

    Returns
    -------
    list of K dicts
        ``{"test_accuracy", "train_accuracy", "wall_time_s"}`` as :func:`train` returns, where
        ``wall_time_s`` is the time of the whole batched training, shared by the K runs.
    """
    n_replicates = model.n_replicates
    if len(streams) != n_replicates:
        raise InputError(f"streams: {len(streams)} seed streams for {n_replicates} replicates", parameter="streams")
    device = data.x_train.device
    order_generators = [_generator(device, s.order) for s in streams]
    augment_generators = [_generator(device, s.augment) for s in streams]
    optimizer = make_optimizer(model, config)
    n_examples = len(data.y_train)
    steps_per_epoch = math.ceil(n_examples / config.batch_size)
    started = time.perf_counter()
    step = 0
    pre_step = recorder is not None and getattr(recorder, "needs_pre_step", False)
    model.train()
    for epoch in range(1, config.epochs + 1):
        orders = torch.stack([torch.randperm(n_examples, device=device, generator=g) for g in order_generators])
        n_correct = torch.zeros(n_replicates, dtype=torch.int64, device=device)
        for start in range(0, n_examples, config.batch_size):
            example_ids = orders[:, start : start + config.batch_size]  # (K, B)
            x = augment_replicates(data.x_train[example_ids], config, augment_generators)
            y = data.y_train[example_ids]
            if pre_step:
                recorder.before_step(model, example_ids)
            for group in optimizer.param_groups:
                group["lr"] = config.lr * learning_rate_factor(config, step, steps_per_epoch)
            logits = model(x)
            # The sum of the K replicates' mean losses (each replicate's gradient is its own); for one
            # run, exactly the mean cross-entropy of its minibatch.
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten()) * n_replicates
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            if recorder is not None:
                recorder.observe(example_ids, logits, y)
            n_correct += (logits.detach().argmax(2) == y).sum(1)
        if recorder is not None:
            recorder.end_epoch(model)
        if on_epoch is not None:
            on_epoch(epoch, (n_correct.double() / n_examples).tolist())
    wall = time.perf_counter() - started
    test = evaluate_replicates(model, data.x_test, data.y_test, config.eval_batch_size)
    train_accuracy = evaluate_replicates(model, data.x_train, data.y_train, config.eval_batch_size)
    return [{"test_accuracy": t, "train_accuracy": a, "wall_time_s": wall} for t, a in zip(test, train_accuracy)]


