"""The ``mnistlab`` command group and its entry point, :func:`main`.

The commands live in one module per group (:mod:`~mnistlab.cli.data_commands`,
:mod:`~mnistlab.cli.train_commands`, :mod:`~mnistlab.cli.use_commands`,
:mod:`~mnistlab.cli.drive_commands`); this module puts them under one group and
turns errors a user can fix into one line on stderr and an exit code.
"""

from __future__ import annotations

import click

from mnistlab.cli import (
    data_commands,
    drive_commands,
    read_commands,
    train_commands,
    trust_commands,
    use_commands,
)
from mnistlab.errors import MnistlabError
from mnistlab.runtime import install_startup_filter


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="mnistlab")
def cli() -> None:
    """Train, understand, compare and use MNIST digit classifiers.

    \b
    A typical session:
      mnistlab data                      # fetch and verify MNIST
      mnistlab train --model fnn         # train; the run goes to runs/<id>, runs/latest
      mnistlab evaluate runs/latest      # test metrics -> metrics.json
      mnistlab report runs/latest        # plots + report.html
    """


for _command in (
    data_commands.data,
    data_commands.models,
    train_commands.train,
    train_commands.ensemble_command,
    train_commands.evaluate,
    train_commands.calibrate,
    train_commands.report,
    train_commands.compare,
    use_commands.preprocess,
    use_commands.predict,
    use_commands.export,
    use_commands.serve,
    drive_commands.tune,
    drive_commands.cv,
    drive_commands.bench,
    drive_commands.robustness,
    trust_commands.trust,
    trust_commands.ood,
    read_commands.read,
    read_commands.read_bench,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one line and an exit code."""
    install_startup_filter()  # TensorFlow's start-up lines stay off the terminal
    try:
        # Without standalone mode, Click returns a command's `Exit(code)` as its value.
        code = cli.main(args=argv, prog_name="mnistlab", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool):
            return code
    except MnistlabError as err:
        click.echo(f"mnistlab: error: {err}", err=True)
        return 1
    except click.exceptions.Abort as err:
        # Click turns Ctrl-C into Abort; an interrupted training's message says how to resume.
        cause = str(err.__cause__) if isinstance(err.__cause__, KeyboardInterrupt) else ""
        click.echo(f"mnistlab: {cause or 'aborted'}", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("mnistlab: interrupted", err=True)
        return 130
    except click.ClickException as err:
        err.show()
        return err.exit_code
    except click.exceptions.Exit as err:
        return err.exit_code
    return 0
