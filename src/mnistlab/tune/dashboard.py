"""The tuning dashboard: a study's ``report.html``, from the template ``tune/dashboard.html``.

One self-contained page (plots embedded as ``data:`` URIs, inline CSS, no
scripts): the summary, the retrained best configuration if any, the best
configuration with the command that trains it, the search space, the plots and
every trial. It is built of the report's blocks
(:mod:`mnistlab.report.blocks`); study names, parameters and paths are escaped
by the template engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mnistlab.report.blocks import Block, Paragraph, PngFigure, Section, Table
from mnistlab.report.page import render_page
from mnistlab.tune.outputs import FIGURES, TuneResult
from mnistlab.tune.storage import OBJECTIVE, counts_text
from mnistlab.tune.trials import short

if TYPE_CHECKING:
    import optuna

CAPTIONS = {
    "history": "Optimisation history: every trial's score, and the best so far.",
    "importances": "Parameter importances: how much of the variation in validation "
    "accuracy each parameter explains (Optuna's default evaluator).",
    "parallel": "Parallel coordinates: each line is a finished trial, coloured by its score.",
}


def render_report(
    result: TuneResult, opt_study: optuna.Study, missing: Mapping[str, str] | None = None
) -> str:
    """The tuning report: one self-contained HTML page (figures embedded).

    Parameters
    ----------
    result : what :func:`~mnistlab.tune.write_outputs` found.
    opt_study : the Optuna study.
    missing : figure key -> why it is not in ``result.paths`` (shown instead).

    Returns
    -------
    An HTML document, rendered from the template ``tune/dashboard.html``.
    """
    best = opt_study.best_trial
    model = opt_study.user_attrs.get("model", "")
    summary = [
        ("study", result.study),
        ("model", model),
        ("storage", result.storage),
        ("objective", f"best {OBJECTIVE} of a trial (validation split; the test set is not used)"),
        ("trials", counts_text(result.counts)),
        ("best trial", f"{best.number}: {OBJECTIVE} {best.value:.4f}"),
        ("best trial's run", best.user_attrs.get("run", "")),
    ]
    sections = [Section("Summary", [Table(None, summary, cls="kv")])]
    if result.retrain:
        r = result.retrain
        rows = [
            ("run", r["run"]),
            ("configuration of", f"trial {r['trial']}"),
            ("epochs run", f"{r['epochs_run']} of {r['epochs']}"),
            (f"best {OBJECTIVE}", f"{r['best_val_accuracy']:.4f}"),
            ("test accuracy (evaluated once)", f"{r['test_accuracy']:.4f}"),
        ]
        sections.append(Section("Best configuration retrained", [Table(None, rows, cls="kv")]))
    config_rows = [(k, _plain(v)) for k, v in sorted(result.best_config.items())]
    sections.append(
        Section(
            "Best configuration",
            [
                Table(("setting", "value"), config_rows, cls="kv"),
                Paragraph("Train it yourself: " + train_command(result.best_config), "note"),
            ],
        )
    )
    space_rows = [(name, _describe(dist)) for name, dist in best.distributions.items()]
    sections.append(Section("Search space", [Table(("parameter", "range"), space_rows)]))
    sections.append(Section("Plots", _plots(result, missing or {})))
    sections.append(_trials_section(result, opt_study))
    return render_page(
        f"Hyperparameter search: {result.study}",
        sections,
        subtitle=f"{model} — best {OBJECTIVE} {result.best_value:.4f} "
        f"(trial {result.best_trial}) — {counts_text(result.counts)}",
        template="tune/dashboard.html",
    )


def _plots(result: TuneResult, missing: Mapping[str, str]) -> list[Block]:
    # Each plot, or a note saying why it was not drawn.
    blocks: list[Block] = []
    for key in FIGURES:
        if key in result.paths:
            blocks.append(PngFigure(result.paths[key], CAPTIONS[key]))
        else:
            reason = missing.get(key, "not enough finished trials")
            title = CAPTIONS[key].split(":")[0]
            blocks.append(Paragraph(f"{title}: not drawn ({reason}).", "note"))
    return blocks


def _trials_section(result: TuneResult, opt_study: optuna.Study) -> Section:
    # Every trial with its state, score, epochs, seconds and parameters.
    trials = opt_study.get_trials(deepcopy=False)
    names = sorted({p for t in trials for p in t.params})
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        duration = (
            f"{(t.datetime_complete - t.datetime_start).total_seconds():.0f}"
            if t.datetime_complete and t.datetime_start
            else ""
        )
        value = "" if t.value is None else f"{t.value:.4f}"
        rows.append(
            [t.number, t.state.name.lower(), value, len(t.intermediate_values), duration]
            + [short(t.params[n]) if n in t.params else "" for n in names]
        )
    table = Table(
        ["trial", "state", OBJECTIVE, "epochs", "seconds", *names],
        rows,
        numeric=[True, False, True, True, True] + [True] * len(names),
        scroll=True,  # one column per parameter: wider than the page
    )
    note = Paragraph(
        "Pruned trials show the validation accuracy of their last epoch. "
        "Every trial is a run directory: " + str(result.out_dir / "trial-<n>"),
        "note",
    )
    return Section("All trials", [table, note])


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    if isinstance(value, dict):
        return " ".join(f"{k}={_plain(v)}" for k, v in value.items())
    return str(value)


def _describe(dist: Any) -> str:
    # Optuna distributions -> "0.0002 to 0.004, log scale" / "one of 64, 128, 256".
    if hasattr(dist, "choices"):
        return "one of " + ", ".join(map(str, dist.choices))
    text = f"{dist.low:g} to {dist.high:g}"
    if getattr(dist, "log", False):
        text += ", log scale"
    if getattr(dist, "step", None) not in (None, 1):
        text += f", step {dist.step:g}"
    return text


def train_command(config: Mapping[str, Any]) -> str:
    """The ``mnistlab train`` command line that reproduces a configuration.

    >>> train_command({"model": "fnn", "params": {"hidden": [512, 256]}, "epochs": 15})
    'mnistlab train --model fnn -p hidden=512,256 --epochs 15'
    """
    if not config:
        return "(configuration not recorded)"
    parts = [f"mnistlab train --model {config['model']}"]
    for key, value in config.get("params", {}).items():
        parts.append(f"-p {key}={_plain(value)}")
    flags = {
        "seed": "--seed",
        "epochs": "--epochs",
        "batch_size": "--batch-size",
        "learning_rate": "--lr",
        "schedule": "--schedule",
        "patience": "--patience",
        "label_smoothing": "--label-smoothing",
        "weight_decay": "--weight-decay",
        "augment": "--augment",
        "val_size": "--val-size",
    }
    for key, flag in flags.items():
        if key in config:
            value = config[key]
            parts.append(f"{flag} {value:.6g}" if isinstance(value, float) else f"{flag} {value}")
    return " ".join(parts)
