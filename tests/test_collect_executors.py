"""Local executors of `gwasm collect`: Ctrl-C that stops the workers, plain progress lines when
stderr is not a terminal, and the checks of the executor and SLURM settings (no cluster needed)."""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gwas_models.errors import InputError
from gwas_models.formats import store as S
from gwas_models.training.executors import (
    ProgressLines,
    SlurmOptions,
    format_duration,
    parse_memory_gb,
    parse_sbatch_settings,
    parse_time_minutes,
)

ROOT = Path(__file__).resolve().parents[1]
DURATION = r"(?:\d+h\d\dm|\d+m\d\ds|\d+s)"
LINE = re.compile(rf"^\[\d\d:\d\d:\d\d\] run (\d+)/(\d+) seed (\d+) epoch (\d+)/(\d+) train acc \d\.\d{{3}} elapsed {DURATION} eta ({DURATION}|\?)$")


# --------------------------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_the_workers_and_keeps_the_complete_runs(workers, tmp_path, tiny_digits_npz):
    store = tmp_path / "store"
    queued = 8
    # Runs of a second or more each: the queue outlasts the interrupt by far.
    argv = ["collect", "--arch", "mlp", "--dataset", str(tiny_digits_npz), "--epochs", "60", "--runs", str(queued)]
    argv += ["--workers", str(workers), "--device", "cpu", "--threads", "1", "--store", str(store)]
    collector = subprocess.Popen(
        [sys.executable, "-m", "gwasm_cli.main", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        # A shell that starts jobs in the background ignores SIGINT in them: give it back its default.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    progress = []
    try:
        for line in collector.stderr:  # plain progress lines: stderr is a pipe
            progress.append(line.rstrip("\n"))
            if re.search(r"seed \d+ done", line):
                break
        interrupted = time.monotonic()
        collector.send_signal(signal.SIGINT)
        _, err = collector.communicate(timeout=30)
        took = time.monotonic() - interrupted
    finally:
        if collector.poll() is None:
            collector.kill()
            collector.communicate()
    assert collector.returncode == 130, err
    # one line per epoch, from worker processes too (they pass their epochs back through a queue)
    epochs = [m.group(4) for m in map(LINE.match, progress) if m]
    assert len(epochs) >= 60 and epochs[0] == "1", progress
    assert took < 10, f"took {took:.1f} s to stop"
    assert err.splitlines()[-1] == "gwasm: error: interrupted"
    seeds = [key.seed for key in S.iter_run_keys(store)]
    assert 1 <= len(seeds) < queued
    for key in S.iter_run_keys(store):
        assert len(pq.read_table(S.run_dir(store, key) / S.RUN_FILE)) == 300
        assert S.read_provenance(store, key)["seed"] == key.seed
    # no worker goes on training the queued runs
    time.sleep(3)
    assert [key.seed for key in S.iter_run_keys(store)] == seeds
    assert not list(store.rglob("*.tmp"))


# --------------------------------------------------------------------------------------------
# Progress when stderr is not a terminal
# --------------------------------------------------------------------------------------------


def test_progress_is_one_plain_line_per_epoch_when_not_on_a_terminal(tmp_path, tiny_digits_npz, run_gwasm):
    base = ["collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "2", "--device", "cpu", "--threads", "1"]
    code, out, err = run_gwasm(*base, "--store", tmp_path / "a")
    assert code == 0, err
    lines = [LINE.match(line) for line in err.splitlines()]
    assert [m.group(4) for m in lines if m] == ["1", "2"]
    assert all(m.group(1, 2, 3, 5) == ("1", "1", "0", "2") for m in lines if m)
    assert re.search(r"run 1/1 seed 0 done, test acc \d\.\d{4} elapsed \d+s eta 0s", err)
    code, out, err = run_gwasm(*base, "--store", tmp_path / "b", "-q")
    assert code == 0 and err == ""


def test_progress_lines_estimate_the_time_left_from_the_epochs_done():
    now = [0.0]
    stream = io.StringIO()
    lines = ProgressLines(stream, n_runs=2, epochs=4, clock=lambda: now[0])
    now[0] = 30.0
    lines("epoch", {"index": 1, "total": 2, "seed": 5, "epoch": 1, "train_accuracy": 0.5})
    now[0] = 60.0
    lines("epoch", {"index": 1, "total": 2, "seed": 5, "epoch": 2, "train_accuracy": 0.75})
    lines("run_end", {"index": 2, "total": 2, "seed": 6, "test_accuracy": float("nan"), "status": "exists", "holder": None})
    first, second, third = stream.getvalue().splitlines()
    assert first.endswith("run 1/2 seed 5 epoch 1/4 train acc 0.500 elapsed 30s eta 3m30s")  # 7 epochs at 30 s
    assert second.endswith("epoch 2/4 train acc 0.750 elapsed 1m00s eta 3m00s")
    assert third.endswith("run 2/2 seed 6 found in the store elapsed 1m00s eta 1m00s")  # its 4 epochs leave the estimate


def test_progress_bar_on_a_terminal_counts_epochs_and_job_array_runs(capsys):
    from gwasm_cli.collect import _ProgressBar

    bar = _ProgressBar()
    bar.expect(2, 3)
    for epoch in (1, 2):
        bar("epoch", {"index": 1, "total": 2, "seed": 0, "epoch": epoch, "train_accuracy": 0.5})
    bar("run_end", {"index": 1, "total": 2, "seed": 0, "test_accuracy": 0.9, "status": "trained", "holder": None})
    assert (bar.bar.n, bar.bar.total) == (3, 6)
    bar("run_end", {"index": 2, "total": 2, "seed": 1, "test_accuracy": float("nan"), "status": "claimed", "holder": "h:1"})
    assert (bar.bar.n, bar.bar.total) == (3, 3)
    bar.close()
    runs = _ProgressBar()
    runs("slurm_status", {"job_id": "12", "total": 4, "finished": 1, "failed": 1, "running": 1, "pending": 1})
    assert (runs.bar.n, runs.bar.total, runs.bar.unit) == (2, 4, "run")
    runs.close()


def test_format_duration():
    assert [format_duration(s) for s in (0, 9.4, 72, 3599, 3725, 90000)] == ["0s", "9s", "1m12s", "59m59s", "1h02m", "25h00m"]


# --------------------------------------------------------------------------------------------
# Executor and SLURM settings
# --------------------------------------------------------------------------------------------


def test_slurm_settings_read_as_sbatch_writes_them():
    assert [parse_time_minutes(v) for v in (90, "90", "1:30:00", "0:59:01", "2-00", "1-02:03:04", "10:30")] == [90, 90, 90, 60, 2880, 1564, 11]
    assert [parse_memory_gb(v) for v in ("8G", "8GB", "512M", "1t", 2, 0.5)] == [8, 8, 0.5, 1024, 2, 0.5]
    assert parse_sbatch_settings(["account=lab", "mail_type=END", "constraint=a100|h100"]) == {"account": "lab", "mail-type": "END", "constraint": "a100|h100"}
    options = SlurmOptions(partition="gpu", time_minutes="1:00:30", cpus_per_run=4, gpus_per_run=1, mem_gb="16G", array_parallelism=8, extra=["qos=short"])
    assert options.sbatch_parameters() == {
        "time": 61, "cpus_per_task": 4, "partition": "gpu", "gpus_per_node": 1, "mem": "16384M", "array_parallelism": 8,
        "additional_parameters": {"qos": "short"},
    }
    assert SlurmOptions().sbatch_parameters() == {"time": 60, "cpus_per_task": 1}


@pytest.mark.parametrize(
    "settings,parameter",
    [
        ({"time_minutes": "soon"}, "time_minutes"),
        ({"time_minutes": "0:00:59"}, "time_minutes"),
        ({"mem_gb": "8"}, "mem_gb"),
        ({"mem_gb": "8X"}, "mem_gb"),
        ({"mem_gb": 0}, "mem_gb"),
        ({"cpus_per_run": 0}, "cpus_per_run"),
        ({"gpus_per_run": -1}, "gpus_per_run"),
        ({"array_parallelism": 0}, "array_parallelism"),
        ({"partition": "a b"}, "partition"),
        ({"extra": ["account"]}, "extra"),
        ({"extra": ["A=lab"]}, "extra"),
        ({"extra": ["time=10"]}, "extra"),
        ({"extra": ["array=0-3"]}, "extra"),
        ({"extra": ["--account=lab"]}, "extra"),
    ],
)
def test_bad_slurm_settings_are_refused(settings, parameter):
    with pytest.raises(InputError) as caught:
        SlurmOptions(**settings)
    assert caught.value.parameter == parameter and "\n" not in str(caught.value)


BAD_EXECUTOR = {
    "slurm option without =": (["--executor", "slurm", "--slurm-option", "account"], "--slurm-option settings are KEY=VALUE"),
    "slurm option gwasm sets": (["--executor", "slurm", "--slurm-option", "time=5"], "--slurm-option setting 'time'"),
    "time": (["--executor", "slurm", "--time", "tomorrow"], "--time must be minutes or HH:MM:SS"),
    "mem without unit": (["--executor", "slurm", "--mem", "8"], "--mem must be a size with a unit"),
    "unknown executor": (["--executor", "kubernetes"], "--executor must be one of local, slurm"),
    "slurm settings, local executor": (["--partition", "gpu"], "--executor 'local' takes no SLURM settings"),
    "workers with slurm": (["--executor", "slurm", "--workers", "2"], "--workers applies to executor 'local' only"),
}


@pytest.mark.parametrize("case", list(BAD_EXECUTOR), ids=list(BAD_EXECUTOR))
def test_bad_executor_input_is_one_line(case, tmp_path, tiny_digits_npz, run_gwasm):
    extra, expected = BAD_EXECUTOR[case]
    store = tmp_path / "store"
    code, out, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--store", store, "-q", *extra)
    assert (code, out) == (2, "") and len(err.splitlines()) == 1, err
    assert err.startswith("gwasm: error: ") and expected in err, err
    assert not store.exists() or not any(store.iterdir())


def test_slurm_without_slurm_commands_is_one_line(tmp_path, tiny_digits_npz, run_gwasm, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    store = tmp_path / "store"
    code, out, err = run_gwasm("collect", "--arch", "mlp", "--dataset", tiny_digits_npz, "--epochs", "1", "--store", store, "--executor", "slurm")
    assert (code, out) == (2, "") and len(err.splitlines()) == 1, err
    assert "--executor 'slurm' needs the SLURM commands on the PATH; missing: sbatch, squeue, srun" in err
    assert not (store / ".slurm").exists()
