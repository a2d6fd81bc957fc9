"""Commands that read whole written numbers: ``read`` and ``read-bench``.

Exit statuses of ``mnistlab read``: 0 every image was read; 3 some image holds no
readable number (blank, no digits, not a number: each says why); 1 a user error
(no such run, an unreadable file), as for every command.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import click

from mnistlab.cli.options import RUNS_DIR_OPTION, SEED, json_option

# `mnistlab read` exits with this when some image held no readable number.
EXIT_NO_NUMBER = 3


@click.command()
@click.argument("run")
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@json_option("Print the number, its confidence and each digit's box and probabilities.")
@click.option(
    "--annotate",
    "annotate_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write a copy of each image with the digits' boxes and readings drawn into DIR.",
)
@RUNS_DIR_OPTION
def read(
    run: str, images: tuple[str, ...], as_json: bool, annotate_dir: str | None, runs_dir: str
) -> None:
    """Read the handwritten number (1-12 digits on one line) in each IMAGE with RUN's model.

    Digits may be spaced, touching, broken, in printed boxes or on ruled paper, dark
    on light or light on dark. Prints one line per image: the file, the number (or
    why there is none) and its confidence. Exit status 3 when some image holds no
    readable number (nothing is ever made up), 1 for errors such as a missing file.

    \b
    Example:
      mnistlab read runs/latest postcode.png
      mnistlab read latest form.jpg --json --annotate annotated/
    """
    from mnistlab import files
    from mnistlab.predict import load_image
    from mnistlab.read import NumberReader, annotate, read_image

    reader = NumberReader.from_run(run, runs_dir)
    results = []
    for name in images:
        gray = load_image(name)
        reading = read_image(reader, gray)
        results.append({"file": name, **reading.model_dump()})
        if annotate_dir is not None:
            buf = io.BytesIO()
            annotate(gray, reading).save(buf, format="PNG")
            files.write_bytes(Path(annotate_dir) / f"{Path(name).stem}.read.png", buf.getvalue())
        if not as_json:
            if reading.text is None:
                click.echo(f"{name}: no number ({reading.reason})")
            else:
                click.echo(f"{name}: {reading.text}  (confidence {reading.confidence:.2f})")
    if as_json:
        click.echo(json.dumps(results if len(results) > 1 else results[0], indent=2))
    if any(r["text"] is None for r in results):
        raise click.exceptions.Exit(EXIT_NO_NUMBER)


@click.command("read-bench")
@click.argument("run", default="latest")
@click.option(
    "--per-layout",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="Composed images per layout.",
)
@click.option(
    "--split",
    type=click.Choice(["test", "validation"]),
    default="test",
    show_default=True,
    help="Compose from MNIST test digits (the benchmark) or the train split's held-out "
    "part (where settings are chosen).",
)
@click.option("--seed", type=SEED, default=None, help="Composition seed (default: the split's).")
@click.option(
    "--tesseract",
    "psms",
    default="7",
    show_default=True,
    help="Tesseract page-segmentation modes to run as the peer, comma-separated "
    "(7 line, 8 word, 13 raw line, 6 block); 'none' to skip.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the scores as JSON to this file.",
)
@json_option("Print the scores as JSON.")
@RUNS_DIR_OPTION
def read_bench(
    run: str,
    per_layout: int,
    split: str,
    seed: int | None,
    psms: str,
    out_path: str | None,
    as_json: bool,
    runs_dir: str,
) -> None:
    """Score the number reader and Tesseract on composed numbers, per layout.

    Numbers of 2-8 MNIST digits (test split), spaced, touching, one per printed box,
    on ruled paper and photo-like; exact-number accuracy, digit accuracy (from the
    edit distance) and images per second.

    \b
    Example:
      mnistlab read-bench runs/latest --per-layout 100 --tesseract 7,8,13,6
      mnistlab read-bench latest --split validation --tesseract none
    """
    from mnistlab import files
    from mnistlab.errors import MnistlabError
    from mnistlab.read import NumberReader
    from mnistlab.read.benchmark import (
        benchmark_set,
        format_scores,
        mnistlab_reader,
        score_reader,
        tesseract_reader,
    )

    modes: list[int] = []
    if psms.strip().lower() != "none":
        try:
            modes = [int(p) for p in psms.split(",") if p.strip()]
        except ValueError as err:
            raise MnistlabError(f"--tesseract {psms!r}: expected modes like 7,8 or 'none'") from err
    reader = NumberReader.from_run(run, runs_dir)
    images = benchmark_set(split, per_layout, seed=seed)
    click.echo(f"read-bench: {len(images)} images ({split} split)", err=True)
    scores, _ = score_reader("mnistlab (segment + classify)", mnistlab_reader(reader), images)
    for psm in modes:
        click.echo(f"read-bench: tesseract --psm {psm}", err=True)
        found, _ = score_reader(f"tesseract --psm {psm}", tesseract_reader(psm), images)
        scores.extend(found)
    dumped = [s.model_dump() for s in scores]
    command = f"mnistlab read-bench {run} --per-layout {per_layout} --tesseract {psms}"
    if split != "test" or seed is not None:
        command += f" --split {split}" + (f" --seed {seed}" if seed is not None else "")
    record = {"command": command, "split": split, "per_layout": per_layout, "scores": dumped}
    if out_path is not None:
        files.write_json(out_path, record)
    if split == "test" and seed is None and reader.run_path is not None:
        # The benchmark of a run goes into it: report.html shows it ("Reading numbers").
        from mnistlab.report.read_section import READ_BENCHMARK_FILE

        files.write_json(Path(reader.run_path) / READ_BENCHMARK_FILE, record)
    click.echo(json.dumps(dumped, indent=2) if as_json else format_scores(scores))
