"""Every score definition against an independent computation from a real (tiny) training run.

The test trains a small CNN with batch norm (so eval and training modes differ) in its own plain
loop, with augmentation, and logs everything the definitions are made of by itself: the training
minibatches' logits, the eval-mode logits of each unaugmented minibatch just before its step, the
eval-mode logits of the whole training set at each epoch end, and at each epoch end every example's
input gradient of its true-class probability and logit, one example at a time. From those logs it
recomputes every definition with plain per-example Python loops (no :mod:`gwas_models.scores`
function), and compares them with what the streaming :class:`ScoreRecorder` recorded during the same
run, and with the NumPy reference definitions of :mod:`gwas_models.scores` applied to the logs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gwas_models import scores as S
from gwas_models.training.recorder import ScoreRecorder

torch.set_num_threads(1)

N_EXAMPLES, N_CLASSES, EPOCHS, BATCH = 48, 3, 5, 8
INPUT_SHAPE = (3, 4, 4)  # three channels, so channel averaging matters


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.norm = nn.BatchNorm2d(6)
        self.head = nn.Linear(6 * 4, N_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.norm(self.conv(x)))
        return self.head(F.adaptive_avg_pool2d(h, 2).flatten(1))


@dataclass
class RunLog:
    """What the test's own loop logged, per example in order of its presentations."""

    presentation: dict[int, list[np.ndarray]] = field(default_factory=lambda: {i: [] for i in range(N_EXAMPLES)})
    prestep: dict[int, list[np.ndarray]] = field(default_factory=lambda: {i: [] for i in range(N_EXAMPLES)})
    epoch_logits: list[np.ndarray] = field(default_factory=list)  # (n_examples, n_classes) per epoch
    probability_grads: list[np.ndarray] = field(default_factory=list)  # (n_examples, *input) per epoch
    logit_grads: list[np.ndarray] = field(default_factory=list)
    grand: np.ndarray | None = None
    eval_forwards_by_recorder: int = 0


def _data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, N_CLASSES, N_EXAMPLES)
    x = rng.normal(0, 1, (N_EXAMPLES, *INPUT_SHAPE)) + 0.8 * y[:, None, None, None]
    y[:6] = (y[:6] + 1) % N_CLASSES  # a few wrong labels, so that some examples are forgotten or never learned
    return torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.int64)


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(len(x), generator=generator, dtype=torch.float64) < 0.5
    noise = 0.3 * torch.randn(x.shape, generator=generator, dtype=torch.float64)
    return torch.where(flip[:, None, None, None], x.flip(-1), x) + noise


def _own_input_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """d p(true) / d input and d logit(true) / d input, one example at a time, in eval mode."""
    model.eval()
    probability, logit = [], []
    for i in range(len(y)):
        xi = x[i : i + 1].clone().requires_grad_(True)
        out = model(xi)[0]
        (g_logit,) = torch.autograd.grad(out[y[i]], xi, retain_graph=True)
        (g_probability,) = torch.autograd.grad(torch.softmax(out, 0)[y[i]], xi)
        probability.append(g_probability[0].numpy())
        logit.append(g_logit[0].numpy())
    model.train()
    return np.stack(probability), np.stack(logit)


def _own_grad_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """‖∇θ cross-entropy‖₂ of each example over every parameter, eval mode, one at a time."""
    model.eval()
    norms = []
    for i in range(len(y)):
        grads = torch.autograd.grad(F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), list(model.parameters()))
        norms.append(math.sqrt(sum(float((g**2).sum()) for g in grads)))
    model.train()
    return np.array(norms)


def train_and_log(seed: int = 0) -> tuple[dict[str, np.ndarray], RunLog, np.ndarray, int]:
    """Train TinyNet with the test's own loop; return the recorder's scores, the log, labels, early epoch."""
    x, y = _data(seed)
    torch.manual_seed(seed)
    model = TinyNet().double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    order_generator = torch.Generator().manual_seed(seed + 1)
    augment_generator = torch.Generator().manual_seed(seed + 2)
    recorder = ScoreRecorder(x, y, N_CLASSES, EPOCHS, scores=S.ALL_SCORE_NAMES, eval_batch_size=20)
    log = RunLog()

    def count_recorder_eval_forwards(module, inputs, output):
        if not module.training and counting["on"]:
            log.eval_forwards_by_recorder += 1

    counting = {"on": False}
    model.register_forward_hook(count_recorder_eval_forwards)
    for epoch in range(1, EPOCHS + 1):
        order = torch.randperm(N_EXAMPLES, generator=order_generator)
        for start in range(0, N_EXAMPLES, BATCH):
            ids = order[start : start + BATCH]
            model.eval()
            with torch.no_grad():  # the test's own pre-step prediction: eval mode, unaugmented
                before = model(x[ids]).numpy()
            model.train()
            counting["on"] = True
            recorder.before_step(model, ids)
            counting["on"] = False
            logits = model(_augment(x[ids], augment_generator))
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(logits, y[ids]).backward()
            optimizer.step()
            recorder.observe(ids, logits, y[ids])
            for row, i in enumerate(ids.tolist()):
                log.prestep[i].append(before[row])
                log.presentation[i].append(logits[row].detach().numpy())
        # The test's own epoch-end evaluation and per-example gradients, at the model the recorder sees.
        model.eval()
        with torch.no_grad():
            log.epoch_logits.append(model(x).numpy())
        probability, logit = _own_input_grads(model, x, y)
        log.probability_grads.append(probability)
        log.logit_grads.append(logit)
        if epoch == recorder.early_epoch:
            log.grand = _own_grad_norms(model, x, y)
        recorder.end_epoch(model)
    return recorder.scores(), log, y.numpy(), recorder.early_epoch


# --------------------------------------------------------------------------------------------
# The independent computation: plain loops over examples, straight from the definitions' text.
# --------------------------------------------------------------------------------------------


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def _margin(values: np.ndarray, target: int) -> float:
    return float(values[target] - max(v for k, v in enumerate(values) if k != target))


def _forgetting_events(correct: list[bool]) -> int:
    return sum(1 for a, b in zip(correct[:-1], correct[1:]) if a and not b)


def _first_step_staying_correct(correct: list[bool]) -> int:
    step = len(correct) + 1
    for t in range(len(correct), 0, -1):
        if not correct[t - 1]:
            break
        step = t
    return step


def _mean(values) -> float:
    return float(sum(values) / len(values))


def _population_std(values) -> float:
    m = _mean(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / len(values))


def _per_example(logits_rows: list[np.ndarray], target: int) -> dict[str, list]:
    """Per-evaluation quantities of one example's sequence of logits."""
    out: dict[str, list] = {"loss": [], "correct": [], "p": [], "margin": [], "logit_margin": [], "entropy": []}
    for z in logits_rows:
        p = _softmax(np.asarray(z, dtype=np.float64))
        out["loss"].append(-math.log(p[target]))
        out["correct"].append(int(np.argmax(z)) == target)
        out["p"].append(float(p[target]))
        out["margin"].append(_margin(p, target))
        out["logit_margin"].append(_margin(np.asarray(z, dtype=np.float64), target))
        out["entropy"].append(-float(sum(q * math.log(q) for q in p)))
    return out


def _vog_of_example(grads: list[np.ndarray], channel_mean: bool, statistic: str) -> float:
    """grads: one (channels, h, w) array per checkpoint; the statistic over checkpoints per element."""
    maps = [g.mean(axis=0) if channel_mean else g for g in grads]
    k = len(maps)
    values = []
    for index in np.ndindex(maps[0].shape):
        series = [m[index] for m in maps]
        mean = sum(series) / k
        squares = sum((v - mean) ** 2 for v in series)
        values.append({"sample_var": squares / (k - 1), "var": squares / k, "std": math.sqrt(squares / k)}[statistic])
    return _mean(values)


def independent_scores(log: RunLog, labels: np.ndarray, early_epoch: int) -> dict[str, np.ndarray]:
    """Every definition recomputed from the log, example by example."""
    out: dict[str, list[float]] = {name: [] for name in S.ALL_SCORE_NAMES}
    for i, target in enumerate(labels.tolist()):
        seen = _per_example(log.presentation[i], target)
        before = _per_example(log.prestep[i], target)
        evaluated = _per_example([e[i] for e in log.epoch_logits], target)
        never_right = not any(seen["correct"])
        p_early = _softmax(log.epoch_logits[early_epoch - 1][i])
        one_hot = np.eye(N_CLASSES)[target]
        row = {
            "loss": _mean(evaluated["loss"]),
            "accuracy": _mean(evaluated["correct"]),
            "aum": _mean(evaluated["margin"]),
            "forgetting": _forgetting_events(before["correct"]),
            "consistently_learned": _first_step_staying_correct(before["correct"]),
            "el2n": math.sqrt(sum((a - b) ** 2 for a, b in zip(p_early, one_hot))),
            "grand": log.grand[i],
            "vog": _vog_of_example([g[i] for g in log.probability_grads], channel_mean=True, statistic="sample_var"),
            "confidence": _mean(evaluated["p"]),
            "variability": _population_std(evaluated["p"]),
            "entropy": _mean(evaluated["entropy"]),
            "loss:presentations": _mean(seen["loss"]),
            "accuracy:presentations": _mean(seen["correct"]),
            "aum:presentations": _mean(seen["margin"]),
            "aum:pleiss": _mean(seen["logit_margin"]),
            "forgetting:toneva": len(seen["correct"]) if never_right else _forgetting_events(seen["correct"]),
            "consistently_learned:epoch": _first_step_staying_correct(evaluated["correct"]),
            "vog:logit": _vog_of_example([g[i] for g in log.logit_grads], channel_mean=False, statistic="var"),
            "vog:agarwal": _vog_of_example([g[i] for g in log.logit_grads], channel_mean=True, statistic="std"),
            "confidence:swayamdipta": _mean(seen["p"]),
            "variability:swayamdipta": _population_std(seen["p"]),
            "entropy:presentations": _mean(seen["entropy"]),
        }
        for name, value in row.items():
            out[name].append(float(value))
    result = {name: np.array(values) for name, values in out.items()}
    # Agarwal et al.: normalise within each class, (vog - class mean) / class std.
    raw = result["vog:agarwal"].copy()
    for label in set(labels.tolist()):
        members = [i for i, t in enumerate(labels.tolist()) if t == label]
        values = [raw[i] for i in members]
        for i in members:
            result["vog:agarwal"][i] = (raw[i] - _mean(values)) / _population_std(values)
    return result


# Output-based scores go through the recorder's float32 softmax; gradients stay in float64.
TOLERANCES = {"grand": (1e-6, 0.0), "vog": (1e-7, 0.0), "vog:logit": (1e-7, 0.0), "vog:agarwal": (1e-7, 1e-9)}


@pytest.fixture(scope="module")
def run():
    return train_and_log(seed=0)


def test_the_run_exercises_every_branch(run):
    scores, log, labels, early_epoch = run
    assert early_epoch == 2  # max(2, round(5 / 8))
    prestep_correct = [[int(np.argmax(z)) == t for z in log.prestep[i]] for i, t in enumerate(labels.tolist())]
    presented_correct = [[int(np.argmax(z)) == t for z in log.presentation[i]] for i, t in enumerate(labels.tolist())]
    assert all(len(c) == EPOCHS for c in prestep_correct)  # every example once per epoch
    assert any(_forgetting_events(c) > 0 for c in prestep_correct)  # forgotten examples
    assert any(not any(c) for c in presented_correct)  # never learned in training mode
    assert any(c[-1] is False for c in prestep_correct)  # not learned at the last presentation
    # eval mode, unaugmented, differs from the training minibatch's own prediction
    assert not np.allclose(np.stack(log.prestep[0]), np.stack(log.presentation[0]))
    # the recorder's pre-step pass: one eval-mode forward per step
    assert log.eval_forwards_by_recorder == EPOCHS * math.ceil(N_EXAMPLES / BATCH)


@pytest.mark.parametrize("name", S.ALL_SCORE_NAMES)
def test_recorder_matches_the_independent_computation(run, name):
    scores, log, labels, early_epoch = run
    expected = independent_scores(log, labels, early_epoch)[name]
    rtol, atol = TOLERANCES.get(name, (0.0, 2e-6))
    assert np.isfinite(scores[name]).all(), name
    np.testing.assert_allclose(scores[name], expected, rtol=rtol, atol=atol, err_msg=name)


def test_reference_definitions_match_the_independent_computation(run):
    scores, log, labels, early_epoch = run
    expected = independent_scores(log, labels, early_epoch)
    stack = lambda rows: np.stack([np.stack(rows[i]) for i in range(N_EXAMPLES)], axis=1)  # noqa: E731
    got = S.scores_from_trajectories(stack(log.presentation), stack(log.prestep), np.stack(log.epoch_logits), labels, early_epoch)
    got["vog"] = S.vog(np.stack(log.probability_grads))
    got["vog:logit"] = S.vog_logit(np.stack(log.logit_grads))
    got["vog:agarwal"] = S.vog_agarwal(np.stack(log.logit_grads), labels)
    for name, values in got.items():
        np.testing.assert_allclose(values, expected[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_paper_vog_and_logit_vog_are_different_definitions(run):
    scores, *_ = run
    assert not np.allclose(scores["vog"], scores["vog:logit"])
    assert abs(np.mean(scores["vog:agarwal"])) < 1e-9  # centred within every class


# --------------------------------------------------------------------------------------------
# Paul et al.: EL2N averaged over the runs of an architecture, made at analysis time
# --------------------------------------------------------------------------------------------


def _el2n_matrix(values: np.ndarray, groups: list[str], score: str = "el2n"):
    from gwas_models.matrix import ScoreMatrix

    n_runs, n_examples = values.shape
    return ScoreMatrix(score, values, np.array(groups), np.arange(n_runs), np.arange(n_examples), np.zeros(n_examples, dtype=int), ("a",))


def test_el2n_over_runs_is_the_mean_over_the_runs_of_one_architecture():
    from gwas_models.analysis.difficulty import EL2N_OVER_RUNS, el2n_over_runs, score_correlations

    values = np.array([[0.1, 0.5, 0.9], [0.3, 0.7, 1.1], [5.0, 5.0, 5.0]])
    matrix = _el2n_matrix(values, ["resnet20", "resnet20", "vgg16"])
    averaged = el2n_over_runs(matrix, "resnet20")
    assert averaged.name == EL2N_OVER_RUNS == "el2n:paul" and averaged.higher_is_harder
    np.testing.assert_allclose(averaged.values, [0.2, 0.6, 1.0], atol=1e-12)
    # usable as a single-run score beside the per-run scores
    one = _el2n_matrix(values[:2], ["resnet20", "resnet20"])
    table = score_correlations({"el2n": one}, [el2n_over_runs(one)]).mean_to_mean
    assert table.loc["el2n", "el2n:paul"] == pytest.approx(1.0)


def test_el2n_over_runs_needs_el2n_and_an_architecture():
    from gwas_models.analysis.difficulty import el2n_over_runs
    from gwas_models.errors import InputError

    values = np.ones((2, 3))
    with pytest.raises(InputError, match="^group"):
        el2n_over_runs(_el2n_matrix(values, ["a", "b"]))
    with pytest.raises(InputError, match="^matrix must hold el2n"):
        el2n_over_runs(_el2n_matrix(values, ["a", "a"], score="loss"))


# --------------------------------------------------------------------------------------------
# Choosing definitions on the command line
# --------------------------------------------------------------------------------------------

FAST = ["--device", "cpu", "--threads", "1", "-q"]


def _collected(store, arch="mlp"):
    import pyarrow.parquet as pq

    from gwas_models.formats.store import RUN_FILE, RunKey, read_provenance, run_dir

    key = RunKey("tiny_digits", arch, 0)
    return pq.read_table(run_dir(store, key) / RUN_FILE).to_pandas(), read_provenance(store, key)


def test_collect_records_the_paper_set_by_default(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "2", "--store", store, *FAST)
    assert code == 0, err
    frame, provenance = _collected(store)
    assert provenance["scores"] == list(S.SCORE_NAMES) == provenance["score_definitions"]["recorded"]
    assert frame[list(S.SCORE_NAMES)].notna().all().all()
    assert frame[list(S.VARIANT_NAMES)].isna().all().all()  # variants only when asked for


def test_collect_records_named_variants_in_their_own_columns(tmp_path, tiny_digits_npz, run_gwasm):
    store = tmp_path / "store"
    chosen = "loss,vog:agarwal,forgetting:toneva"
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "2", "--scores", chosen, "--store", store, *FAST)
    assert code == 0, err
    frame, provenance = _collected(store)
    assert provenance["score_definitions"]["recorded"] == chosen.split(",")
    assert frame[chosen.split(",")].notna().all().all()
    assert frame[["vog", "vog:logit", "forgetting", "loss:presentations"]].isna().all().all()
    code, out, _ = run_gwasm("correlate", "mlp", "--store", store, "--out", tmp_path / "c")
    assert code == 0
    assert "vog:agarwal" in (tmp_path / "c.tsv").read_text()


def test_collect_rejects_an_unknown_variant_in_one_line(tmp_path, run_gwasm):
    code, _, err = run_gwasm("collect", "--arch", "mlp", "--scores", "vog:bogus", "--store", tmp_path / "store", *FAST)
    assert code == 2
    assert "vog:bogus" in err and "vog:agarwal" in err  # the valid names are listed
