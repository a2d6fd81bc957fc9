"""Where a study lives: its database (any SQLAlchemy URL), and what the study records.

The default storage is an SQLite file, ``<runs_dir>/tune/optuna.db``: nothing to
start, and running the same command again continues the study. With a server
such as PostgreSQL, workers on several machines join one study. A study records
the model it tunes and the budget of its trials (epochs, training images, seed),
and refuses trials that would not compare with those it has.

>>> redact("postgresql://me:secret@db.example/optuna")
'postgresql://me:***@db.example/optuna'
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnistlab.errors import MnistlabError

if TYPE_CHECKING:  # optuna and SQLAlchemy load on first use: `mnistlab --help` stays quick
    import optuna

OBJECTIVE = "val_accuracy"  # reported per epoch; a trial scores the epoch whose weights it keeps
STUDY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # also a directory name


def default_storage(runs_dir: str | Path = "runs") -> str:
    """The embedded default: ``sqlite:///<runs_dir>/tune/optuna.db`` (absolute path)."""
    return f"sqlite:///{(Path(runs_dir) / 'tune' / 'optuna.db').resolve()}"


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for messages and files."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all: nothing to hide beyond what the user typed
        return re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Connect to an Optuna study database (creating its tables if needed).

    Parameters
    ----------
    url : an SQLAlchemy URL: ``sqlite:///path.db``, ``postgresql://user:pw@host/db``,
        ``mysql+pymysql://...``.

    Returns
    -------
    optuna.storages.RDBStorage, with heartbeats on, so a trial whose worker died
    is marked failed by the next worker instead of staying "running" for ever.

    Raises
    ------
    MnistlabError
        One line naming the URL (password hidden) and what went wrong.
    """
    import optuna
    from sqlalchemy.engine import make_url

    shown = redact(url)
    try:
        parsed = make_url(url)
    except Exception:
        raise MnistlabError(
            f"--storage {url!r} is not a database URL; give an SQLAlchemy URL such as "
            "sqlite:///runs/tune/optuna.db or postgresql://USER:PASSWORD@HOST:5432/DBNAME"
        ) from None
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise MnistlabError(
            f"--storage {shown} is an in-memory SQLite database, which every connection "
            "sees empty; give a file, such as sqlite:///runs/tune/optuna.db"
        )
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise MnistlabError(
                    f"cannot create {folder} for the study storage {shown}: "
                    f"{err.strerror or err}; choose a writable --runs-dir or --storage"
                ) from None
        # Several worker processes write one file: wait for the lock instead of failing.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        # Don't hang for minutes on an unreachable server, and survive server restarts.
        engine_kwargs["pool_pre_ping"] = True
        if parsed.get_backend_name() == "postgresql":
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
    if parsed.drivername == "postgresql":
        # Plain postgresql:// means psycopg2 in SQLAlchemy < 2.1 and psycopg (3) from 2.1
        # on; name the driver mnistlab installs so the URL works with either.
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    try:
        with quiet_optuna():
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=60, grace_period=180
            )
    except Exception as err:
        cause = getattr(err, "orig", None) or err.__cause__ or err
        reason = " ".join(str(cause).split()).split(" (Background on this error")[0][:300]
        raise MnistlabError(
            f"cannot open the study storage {shown}: {type(cause).__name__}: {reason}; "
            "check the URL, that the database server is running and reachable, and that "
            "its Python driver is installed (psycopg for postgresql://)"
        ) from None


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    # Optuna logs every trial at INFO and warns that its plots are "experimental":
    # our own one line per trial says what matters.
    import optuna

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(max(verbosity, optuna.logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(verbosity)


def create_study(url: str, name: str, model: str) -> optuna.Study:
    """Open study ``name`` in the storage at ``url``, creating it for ``model`` if new.

    Raises
    ------
    MnistlabError
        If the study exists and tunes another model.
    """
    import optuna

    storage = open_storage(url)
    with quiet_optuna():
        study = optuna.create_study(
            storage=storage, study_name=name, direction="maximize", load_if_exists=True
        )
    # A study holds one model's trials: continuing it with another model would mix
    # incomparable search spaces.
    owner = study.user_attrs.get("model")
    if owner is None:
        study.set_user_attr("model", model)
        study.set_user_attr("objective", f"best {OBJECTIVE} (validation split)")
    elif owner != model:
        raise MnistlabError(
            f"study {name!r} in {redact(url)} tunes model {owner!r}, not {model!r}; "
            f"pass --model {owner} or another --study name"
        )
    return study


def load_study(storage: str, study: str) -> optuna.Study:
    """Open the existing study ``study`` in ``storage``; a clear error if there is none."""
    import optuna

    with quiet_optuna():
        try:
            return optuna.load_study(study_name=study, storage=open_storage(storage))
        except KeyError:
            raise MnistlabError(
                f"no study {study!r} in {redact(storage)}; run 'mnistlab tune' to create it"
            ) from None


def check_budget(study: optuna.Study, shown_url: str, budget: dict[str, Any]) -> None:
    """Refuse to add trials trained on another budget or split: their scores would not compare."""
    recorded = study.user_attrs.get("budget") or {}
    differs = [k for k in budget if k in recorded and recorded[k] != budget[k]]
    if differs:
        then = ", ".join(f"{k}={recorded[k]}" for k in differs)
        now = ", ".join(f"{k}={budget[k]}" for k in differs)
        raise MnistlabError(
            f"study {study.study_name!r} in {shown_url} ran its trials with {then}; trials "
            f"with {now} would not compare with them (the seed picks the validation split): "
            "pass the same --epochs, --train-limit and --seed, or another --study name"
        )
    if set(budget) - set(recorded):  # a new study, or one recorded before the seed was
        study.set_user_attr("budget", {**recorded, **budget})


def is_storage_error(err: BaseException) -> bool:
    """Whether ``err`` (or what it wraps) is the database failing, not a bug."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    current: BaseException | None = err
    while current is not None:
        if isinstance(current, SQLAlchemyError | optuna.exceptions.StorageInternalError):
            return True
        current = current.__cause__ or current.__context__
    return False


def counts_text(counts: Mapping[str, int]) -> str:
    """Trials by state in words: ``"3 complete, 1 pruned"`` (``"no trials"`` if none)."""
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no trials"
