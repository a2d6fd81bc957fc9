"""The benchmark: our recipes against the reference recipes, on this machine.

Each recipe trains in its own process (a fresh TensorFlow, fair memory figures)
through the ordinary ``train`` stage. After every epoch the worker measures
test accuracy, outside the training clock: the curve of test accuracy against
training seconds gives the time to 99.0% and 99.5%. Early stopping and model
selection still use the validation split only; the test curve is measurement.

    bench(...) -> for each recipe: python -m mnistlab.bench CONFIG OUT  (a worker)
               -> results.json, results.md, accuracy_vs_time.png

The headline is the ratio against the Keras "Simple MNIST convnet" recipe run
in the same benchmark, not absolute seconds, which depend on the machine.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mnistlab import files
from mnistlab.config import TrainConfig, make_config
from mnistlab.errors import MnistlabError
from mnistlab.progress import format_table, reporter
from mnistlab.runs import load_run_model

THRESHOLDS = (0.99, 0.995)
REFERENCE = "keras-convnet"


def recipes() -> dict[str, TrainConfig]:
    """The benchmark's recipes by name: our registered models and two references.

    ``keras-convnet`` is the Keras example as published; ``seed-fnn`` is the
    seed project's feed-forward net (128-64, dropout 0.2, Adam, batch 32,
    early stopping with patience 3).
    """
    return {
        "cnn-fast": make_config("cnn-fast"),
        "cnn": make_config("cnn"),
        "cnn-best": make_config("cnn-best"),
        "fnn": make_config("fnn"),
        REFERENCE: make_config(REFERENCE),
        "seed-fnn": make_config(
            "fnn",
            params={"hidden": (128, 64), "dropout": 0.2},
            batch_size=32,
            schedule="constant",
            learning_rate=1e-3,
            patience=3,
            epochs=50,
            weight_decay=0.0,
            label_smoothing=0.0,
            augment=0.0,
        ),
    }


QUICK = ("cnn-fast", "fnn", REFERENCE)
# cnn-best (about 14 minutes of training on 2 cores) only when named.
FULL = ("cnn-fast", "cnn", "fnn", REFERENCE, "seed-fnn")


def time_to_accuracy(curve: Sequence[Mapping[str, float]], threshold: float) -> float | None:
    """Training seconds at the first epoch whose test accuracy reaches ``threshold``.

    ``curve`` rows have ``seconds`` (cumulative training time) and
    ``test_accuracy``; None if the threshold is never reached.
    """
    for point in curve:
        if point["test_accuracy"] >= threshold:
            return float(point["seconds"])
    return None


def speedups(
    results: Mapping[str, Mapping[str, Any]],
    reference: str = REFERENCE,
    thresholds: Sequence[float] = THRESHOLDS,
) -> dict:
    """How many times sooner each recipe reaches each threshold than ``reference``.

    Returns ``{recipe: {"0.99": ratio or None, ...}}``; a ratio is None when
    either recipe never reached the threshold.
    """
    ref = results.get(reference)
    out: dict[str, dict[str, float | None]] = {}
    for name, res in results.items():
        out[name] = {}
        for thr in thresholds:
            key = f"{thr:g}"
            mine = res["time_to"].get(key)
            theirs = ref["time_to"].get(key) if ref else None
            out[name][key] = round(theirs / mine, 2) if mine and theirs else None
    return out


def bench(
    selected: Sequence[str] | None = None,
    *,
    quick: bool = False,
    out_dir: str | Path = "bench",
    seed: int = 0,
    configs: Mapping[str, TrainConfig] | None = None,
    progress: bool = True,
    command: str | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
) -> dict[str, Any]:
    """Run the benchmark and write ``results.json``, ``results.md`` and the plot.

    Parameters
    ----------
    selected : recipe names; default :data:`FULL` (or the quick three with ``quick``).
    quick : cnn-fast, fnn and the Keras reference only (a few minutes).
    out_dir : where results and the recipes' run directories go.
    seed : seed of every recipe.
    configs : recipes to use instead of :func:`recipes` (tests use tiny ones).
    progress : report each recipe's progress on stderr (:mod:`mnistlab.progress`),
        with the worker's training output.
    command : the command line that reproduces this run, recorded in the results.
    thresholds : test accuracies whose time-to is recorded (default 99.0%, 99.5%).

    Returns
    -------
    The results dictionary also written to ``results.json``.
    """
    available = dict(configs) if configs is not None else recipes()
    names = list(selected or (QUICK if quick else FULL))
    unknown = [n for n in names if n not in available]
    if unknown:
        raise MnistlabError(
            f"unknown benchmark recipe {', '.join(unknown)}; choose from: {', '.join(available)}"
        )
    out_dir = Path(out_dir)
    configs_by_name = {
        name: TrainConfig.from_dict({**available[name].to_dict(), "seed": seed}) for name in names
    }  # a bad seed fails here, before any worker starts
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MnistlabError(
            f"cannot write the benchmark to {out_dir}: {err.strerror or err}; "
            "pass --out with a writable directory"
        ) from err
    say = reporter(progress)
    results: dict[str, Any] = {}
    for i, name in enumerate(names, 1):
        config = configs_by_name[name]
        say(f"[{i}/{len(names)}] {name}: training {config.model} ...")
        results[name] = r = _run_worker(name, config, out_dir, progress)
        r["time_to"] = {f"{t:g}": time_to_accuracy(r["curve"], t) for t in thresholds}
        say(
            f"[{i}/{len(names)}] {name}: final test accuracy {r['final_accuracy']:.4f}, "
            f"time to {thresholds[0]:.1%} {_secs(r['time_to'][f'{thresholds[0]:g}'])}, "
            f"{r['train_seconds']:.1f} s training"
        )
    summary = {
        "command": command,
        "machine": machine_info(),
        "seed": seed,
        "reference": REFERENCE if REFERENCE in results else None,
        "recipes": results,
        "thresholds": list(thresholds),
        "speedup_vs_reference": speedups(results, REFERENCE, thresholds)
        if REFERENCE in results
        else {},
    }
    files.write_json(out_dir / "results.json", summary)
    files.write_text(out_dir / "results.md", markdown_table(summary))
    plot_curves(summary, out_dir / "accuracy_vs_time.png")
    return summary


def _run_worker(name: str, config: TrainConfig, out_dir: Path, progress: bool) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        cfg_path = Path(tmp) / "config.json"
        res_path = Path(tmp) / "result.json"
        files.write_json(cfg_path, config.to_dict())
        cmd = [
            sys.executable,
            "-m",
            "mnistlab.bench",
            name,
            str(cfg_path),
            str(res_path),
            str(out_dir / "runs"),
        ]
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        done = subprocess.run(
            cmd,
            env=env,
            stdout=sys.stderr if progress else subprocess.DEVNULL,
            stderr=None if progress else subprocess.PIPE,
            text=True,
        )
        if done.returncode != 0 or not res_path.is_file():
            tail = (done.stderr or "").strip().splitlines()[-1:] if not progress else []
            raise MnistlabError(
                f"benchmark recipe {name} failed (exit {done.returncode})"
                + (f": {tail[0]}" if tail else "; see the output above")
            )
        return json.loads(res_path.read_text())


def _secs(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


# -- the worker: one recipe in one process ----------------------------------------


def measure_recipe(name: str, config: TrainConfig, runs_dir: str | Path) -> dict[str, Any]:
    """Train one recipe in this process and measure it (what each worker runs)."""
    import keras
    import tensorflow as tf

    from mnistlab.data import load_dataset, to_float
    from mnistlab.train import train

    data = load_dataset(config.dataset)
    x_test, y_test = to_float(data.x_test), data.y_test

    class TestCurve(keras.callbacks.Callback):
        """Test accuracy after each epoch; its own time is kept off the training clock."""

        def __init__(self) -> None:
            super().__init__()
            self.curve: list[dict[str, float]] = []
            self.eval_wall = 0.0
            self.eval_cpu = 0.0

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            w0, c0 = time.perf_counter(), _cpu_seconds()
            probs = self.model.predict(x_test, batch_size=1024, verbose=0)
            acc = float(np.mean(probs.argmax(1) == y_test))
            self.curve.append(
                {
                    "epoch": epoch + 1,
                    "seconds": round(w0 - self.t0 - self.eval_wall, 3),
                    "test_accuracy": acc,
                }
            )
            self.eval_wall += time.perf_counter() - w0
            self.eval_cpu += _cpu_seconds() - c0

    curve_cb = TestCurve()
    cpu0 = _cpu_seconds()
    run = train(
        config, runs_dir=runs_dir, dataset=data, verbose=2, callbacks=[curve_cb], run_name=None
    )
    cpu_train = _cpu_seconds() - cpu0 - curve_cb.eval_cpu
    state = run.state()
    train_seconds = state["train_seconds"] - curve_cb.eval_wall

    model = load_run_model(run, compile=True)
    infer = tf.function(lambda x: model(x, training=False))
    final_acc = float(
        np.mean(
            np.concatenate(
                [infer(x_test[i : i + 1024]).numpy() for i in range(0, len(x_test), 1024)]
            ).argmax(1)
            == y_test
        )
    )
    n_train = len(data.x_train) - config.val_size
    return {
        "recipe": name,
        "model": config.model,
        "config": config.to_dict(),
        "run": str(run.path),
        "params_count": state["params_count"],
        "epochs_run": state["epochs_run"],
        "train_seconds": round(train_seconds, 2),
        "cpu_seconds": round(cpu_train, 2),
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "train_images_per_s": round(state["epochs_run"] * n_train / train_seconds, 1),
        "final_accuracy": final_acc,
        "curve": curve_cb.curve,
        **_inference_speed(infer, x_test),
    }


def _inference_speed(infer: Any, x_test: np.ndarray) -> dict[str, float]:
    # Batch throughput: 1024-image batches through the compiled forward pass.
    batch = x_test[:1024]
    infer(batch)  # trace once
    reps, t0 = 5, time.perf_counter()
    for _ in range(reps):
        infer(batch).numpy()
    throughput = reps * len(batch) / (time.perf_counter() - t0)
    # Single-image latency: the call a server makes per request.
    one = x_test[:1]
    infer(one)
    times = []
    for i in range(300):
        t = time.perf_counter()
        infer(x_test[i : i + 1]).numpy()
        times.append(time.perf_counter() - t)
    return {
        "infer_images_per_s": round(throughput, 1),
        "latency_ms_p50": round(float(np.percentile(times, 50)) * 1e3, 3),
        "latency_ms_p99": round(float(np.percentile(times, 99)) * 1e3, 3),
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return usage.ru_utime + usage.ru_stime


# -- outputs ---------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """The hardware line of a benchmark: CPU model, cores, memory, versions."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    try:
        import tensorflow as tf

        tf_version = tf.__version__
    except ImportError:  # pragma: no cover
        tf_version = "?"
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "tensorflow": tf_version,
        "date": time.strftime("%Y-%m-%d"),
    }


def markdown_table(summary: Mapping[str, Any]) -> str:
    """The results as a markdown table (the one BENCHMARKS.md shows)."""
    m = summary["machine"]
    machine = (
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; "
        f"Python {m['python']}, TensorFlow {m['tensorflow']}; {m['date']}."
    )
    columns = [
        "recipe",
        "params",
        "epochs",
        "time to 99.0%",
        "time to 99.5%",
        "x sooner to 99.0% (vs keras-convnet)",
        "final test acc",
        "train s",
        "CPU s",
        "train img/s",
        "infer img/s (batch 1024)",
        "latency p50 / p99 ms",
        "peak MiB",
    ]
    rows = []
    for name, r in summary["recipes"].items():
        ratio = summary.get("speedup_vs_reference", {}).get(name, {}).get("0.99")
        rows.append(
            [
                name,
                f"{r['params_count']:,}",
                str(r["epochs_run"]),
                _secs(r["time_to"].get("0.99")),
                _secs(r["time_to"].get("0.995")),
                "-" if ratio is None else f"{ratio:.2f}x",
                f"{r['final_accuracy'] * 100:.2f}%",
                f"{r['train_seconds']:.1f}",
                f"{r['cpu_seconds']:.1f}",
                f"{r['train_images_per_s']:,.0f}",
                f"{r['infer_images_per_s']:,.0f}",
                f"{r['latency_ms_p50']:.2f} / {r['latency_ms_p99']:.2f}",
                f"{r['peak_memory_mib']:,.0f}",
            ]
        )
    return format_table(columns, rows, markdown=True, title=machine) + "\n"


def plot_curves(summary: Mapping[str, Any], path: str | Path) -> Path:
    """Test accuracy against training seconds, one line per recipe."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    for name, r in summary["recipes"].items():
        xs = [p["seconds"] for p in r["curve"]]
        ys = [p["test_accuracy"] * 100 for p in r["curve"]]
        ax.plot(
            xs,
            ys,
            marker="o",
            markersize=3,
            label=name,
            linestyle="--" if name in (REFERENCE, "seed-fnn") else "-",
        )
    for thr in summary.get("thresholds", THRESHOLDS):
        ax.axhline(thr * 100, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("log")
    ax.set_ylim(97.0, 100.0)
    ax.set_xlabel("training time (s, log scale; test evaluation not counted)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"MNIST test accuracy vs training time ({summary['machine']['cores']} CPU cores)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return files.save_figure(fig, path)


def _worker_main(argv: list[str]) -> int:
    name, cfg_path, out_path, runs_dir = argv
    config = TrainConfig.load(cfg_path)
    result = measure_recipe(name, config, runs_dir)
    files.write_json(out_path, result)
    return 0


if __name__ == "__main__":
    from mnistlab.runtime import install_startup_filter

    install_startup_filter()  # a worker's stderr is the bench command's
    sys.exit(_worker_main(sys.argv[1:]))
