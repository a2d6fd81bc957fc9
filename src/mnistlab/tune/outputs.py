"""What a search leaves behind: ``best_params.json``, ``trials.csv``, plots, ``report.html``.

All in ``<runs_dir>/tune/<study>/``, written from the study alone (any machine,
any time: ``mnistlab tune --trials 0`` rewrites them). The plots are Optuna's
Matplotlib plots, drawn inside an ``rc_context`` (Optuna switches to its
``ggplot`` style) and closed once saved, so the user's Matplotlib settings and
open figures are left as they were. The page is
:func:`~mnistlab.tune.dashboard.render_report`; :func:`~mnistlab.tune.search.write_outputs`
writes them all.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistlab import files
from mnistlab.tune.storage import OBJECTIVE, quiet_optuna

if TYPE_CHECKING:  # optuna and Matplotlib load on first use: `mnistlab --help` stays quick
    import optuna
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class TuneResult:
    """What :func:`tune` found and wrote.

    Attributes
    ----------
    study : study name.
    storage : the storage URL, password hidden.
    out_dir : ``<runs_dir>/tune/<study>/`` with the outputs below.
    best_trial : number of the best trial.
    best_value : its best validation accuracy.
    best_params : the values Optuna chose for it (``hidden1``, ``learning_rate``, ...).
    best_config : its complete training configuration (``TrainConfig.to_dict()``).
    counts : trials in the whole study by state (``complete``, ``pruned``, ``fail``, ...).
    paths : ``best_params``, ``trials``, ``report`` and each figure, by name.
    retrain : ``{"run", "best_val_accuracy", "test_accuracy", ...}`` when the best
        configuration was retrained and tested, else None.
    """

    study: str
    storage: str
    out_dir: Path
    best_trial: int
    best_value: float
    best_params: dict[str, Any]
    best_config: dict[str, Any]
    counts: dict[str, int]
    paths: dict[str, Path]
    retrain: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (as written to ``best_params.json``)."""
        d = dataclasses.asdict(self)
        d["out_dir"] = str(self.out_dir)
        d["paths"] = {k: str(v) for k, v in self.paths.items()}
        return d


# figure key -> (file in figures/, Optuna Matplotlib function, size in inches)
FIGURES = {
    "history": ("optimization_history.png", "plot_optimization_history", (9, 5)),
    "importances": ("param_importances.png", "plot_param_importances", (9, 5)),
    "parallel": ("parallel_coordinate.png", "plot_parallel_coordinate", (13, 6)),
}


def write_trials_csv(opt_study: optuna.Study, path: Path) -> None:
    """Every trial of the study, one row each (the full configs stay in the trials' runs)."""
    frame = opt_study.trials_dataframe(
        attrs=(
            "number",
            "value",
            "state",
            "datetime_start",
            "datetime_complete",
            "duration",
            "params",
            "user_attrs",
        )
    )
    # The full config is in each trial's run directory; here it would be one huge cell.
    frame = frame.drop(columns=[c for c in frame.columns if c == "user_attrs_config"])
    buf = io.StringIO()
    frame.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)
    files.write_text(path, buf.getvalue())


@contextmanager
def _pyplot_figures() -> Iterator[None]:
    # Optuna's plots draw with pyplot and set its "ggplot" style globally: keep both
    # inside. rc_context restores every setting, and the figures made meanwhile are
    # closed (the user's own open figures are not touched).
    import matplotlib
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        with matplotlib.rc_context():
            yield
    finally:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)


def write_figures(
    opt_study: optuna.Study, figures_dir: Path
) -> tuple[dict[str, Path], dict[str, str]]:
    """Optuna's plots of the study (:data:`FIGURES`) as PNGs in ``figures_dir``.

    Returns
    -------
    (figure key -> PNG written, figure key -> why it could not be drawn).
    """
    import numpy as np
    import optuna.visualization.matplotlib as ovm

    written, missing = {}, {}
    complete = sum(t.state.name == "COMPLETE" for t in opt_study.trials)
    for key, (name, plot, size) in FIGURES.items():
        if key == "importances" and complete < 2:
            # Optuna draws one trial's "importances" as equal shares: meaningless.
            missing[key] = "needs at least two finished trials"
            continue
        with _pyplot_figures(), quiet_optuna(), warnings.catch_warnings():
            # "some regimes have less than 2 trials": expected in small studies.
            warnings.simplefilter("ignore", UserWarning)
            try:
                ax = getattr(ovm, plot)(opt_study, target_name=f"best {OBJECTIVE}")
            except (ValueError, RuntimeError, ZeroDivisionError) as err:
                # e.g. importances of a single finished trial: the report says it is missing.
                missing[key] = " ".join(str(err).split())[:200]
                continue
            fig: Figure = (ax.flat[0] if isinstance(ax, np.ndarray) else ax).figure
            fig.set_size_inches(*size)
            written[key] = files.save_figure(fig, figures_dir / name)
    return written, missing
