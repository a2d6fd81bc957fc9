"""Commands that use a trained model: ``preprocess``, ``predict``, ``export``, ``serve``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mnistlab.cli.options import RUNS_DIR_OPTION, json_option
from mnistlab.errors import MnistlabError


@click.command()
@click.argument("image", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write the 28x28 MNIST-form image here as PNG.",
)
@click.option(
    "--scale",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="Enlarge each pixel of the written PNG (nearest neighbour).",
)
def preprocess(image: str, out: str | None, scale: int) -> None:
    """Bring an image of a digit into MNIST form (28x28, white ink on black, centred).

    Prints what it found (polarity, ink box) and the result as text art; --out
    writes it as PNG, the exact image a model sees.

    \b
    Example:
      mnistlab preprocess photo.jpg --out small.png --scale 8
    """
    from mnistlab import files
    from mnistlab.predict.preprocess import preprocess_image, to_png

    if out and Path(out).suffix.lower() != ".png":
        raise MnistlabError(f"--out {out}: the image is written as PNG; give a path ending in .png")
    pre = preprocess_image(image)
    shades = " .:-=+*#%@"
    for row in pre.image:
        click.echo("".join(shades[min(int(v * len(shades)), len(shades) - 1)] * 2 for v in row))
    w, h = pre.source_size
    click.echo(f"{image}: {w}x{h}, {pre.polarity}, ink box {pre.bbox} (at working size)")
    if out:
        files.write_bytes(out, to_png(pre.image, scale=scale))
        click.echo(f"wrote {out} ({28 * scale}x{28 * scale})")


@click.command()
@click.argument("model_ref", metavar="RUN_OR_MODEL")
@click.argument("paths", nargs=-1, required=True, metavar="IMG|DIR...")
@click.option(
    "--top-k",
    type=click.IntRange(1, 10),
    default=3,
    show_default=True,
    help="How many likely classes (digits, or the run's class names) to list per file.",
)
@click.option(
    "--min-confidence",
    type=click.FloatRange(0, 1),
    default=None,
    help="Answer only when the top calibrated probability reaches this; else 'unsure' "
    "(default: the run's operating point, chosen on validation; 0 = never unsure).",
)
@click.option(
    "--no-abstain",
    is_flag=True,
    help="Always name a digit (no 'not a digit' / 'unsure' / 'not a single digit').",
)
@click.option(
    "--uncalibrated", is_flag=True, help="The model's own probabilities, not calibrated ones."
)
@json_option()
@RUNS_DIR_OPTION
def predict(
    model_ref: str,
    paths: tuple[str, ...],
    top_k: int,
    min_confidence: float | None,
    no_abstain: bool,
    uncalibrated: bool,
    as_json: bool,
    runs_dir: str,
) -> None:
    """Predict the digit (or the run's class) in image files; directories recursively.

    RUN_OR_MODEL is a run directory, a run name, 'latest', or a .keras file. Each
    image is brought into MNIST form first (see 'mnistlab preprocess'). A file that
    cannot be read is reported in one line and counted; the rest go on, and the exit
    code is 1 if any failed. Files in a folder named by their digit (samples/7/x.png)
    are scored, and the summary gives the accuracy. A run trained on Fashion-MNIST
    prints its class names and scores only folders named by them (Sandal/x.png).

    A run made by 'mnistlab train' is calibrated and abstains: for an image that is not
    a digit, several digits side by side, or one it is unsure of, it prints no digit
    but the reason (and still the scores). Read numbers with 'mnistlab read'.

    \b
    Example:
      mnistlab predict runs/latest samples/ --top-k 3
      mnistlab predict model.keras photo.jpg --json
      mnistlab predict runs/latest doodle.png --min-confidence 0.9
    """
    from mnistlab.predict import load_predictor, predict_files, summarise
    from mnistlab.trust import explain

    predictor = load_predictor(
        model_ref,
        runs_dir,
        calibrated=not uncalibrated,
        abstain=not no_abstain,
        min_confidence=min_confidence,
    )
    results = []
    for r in predict_files(predictor, paths, top_k=top_k):
        results.append(r)
        if as_json:
            continue
        if not r.ok:
            click.echo(f"{r.file}: error: {r.error}", err=True)
            continue
        top = ", ".join(f"{r.class_name(d)} {p:.3f}" for d, p in r.top_k)
        label = "" if r.label is None else r.class_name(r.label)
        mark = "" if r.label is None else ("  ok" if r.correct else f"  WRONG (label {label})")
        if r.reason is not None:
            click.echo(f"{r.file}  -- {r.reason}: {explain(r.reason)}  [top {top_k}: {top}]")
            continue
        name = r.class_name(r.top_k[0][0])  # the predicted class, named
        click.echo(f"{r.file}  {name}  {r.probability:.3f}  [top {top_k}: {top}]{mark}")
    summary = summarise(results)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": predictor.source,
                    "summary": summary,
                    "results": [r.to_dict() for r in results],
                },
                indent=2,
            )
        )
    else:
        abstained = f"{summary['abstained']} abstained, " if summary["abstained"] else ""
        line = (
            f"{summary['files']} files: {summary['predicted']} predicted, "
            f"{abstained}{summary['failed']} failed"
        )
        if summary["labelled"]:
            line += (
                f"; accuracy {summary['correct']}/{summary['labelled']} = "
                f"{100 * summary['accuracy']:.1f}% on files labelled by their folder"
            )
        click.echo(line)
    if summary["failed"]:
        raise MnistlabError(
            f"{summary['failed']} of {summary['files']} files could not be read (listed above)"
        )


@click.command()
@click.argument("run", default="latest")
@click.option(
    "--format",
    "formats",
    type=click.Choice(["savedmodel", "onnx", "tflite"]),
    multiple=True,
    required=True,
    help="Repeatable: savedmodel, onnx, tflite.",
)
@click.option("--out", type=click.Path(), help="Destination (only with one --format).")
@click.option(
    "--uncalibrated", is_flag=True, help="Export the model's own probabilities, not calibrated."
)
@RUNS_DIR_OPTION
def export(
    run: str, formats: tuple[str, ...], out: str | None, uncalibrated: bool, runs_dir: str
) -> None:
    """Export a run's model for TF Serving (savedmodel), onnxruntime (onnx) or TFLite.

    Default destinations are inside the run: export/savedmodel/1/ (a TF Serving model
    base path with version 1), export/model.onnx, export/model.tflite. Every format
    takes float32 (N, 28, 28, 1) in [0, 1] and returns softmax (N, 10), calibrated by the
    run's calibration.json unless --uncalibrated.

    \b
    Example:
      mnistlab export runs/latest --format onnx --format tflite
    """
    from mnistlab.predict.export import export_model

    if out and len(formats) > 1:
        raise MnistlabError("--out names one destination; give one --format with it")
    for fmt in formats:
        path = export_model(run, fmt, out, runs_dir=runs_dir, calibrated=not uncalibrated)
        click.echo(f"{fmt}: {path}")


@click.command()
@click.argument("run", default="latest")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--engine",
    type=click.Choice(["auto", "onnx", "tf"]),
    default="auto",
    show_default=True,
    help="Forward pass: onnxruntime, tf.function, or auto (onnx if it converts).",
)
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(0.001, 1024),
    default=10.0,
    show_default=True,
    help="Larger request bodies get 413.",
)
@click.option(
    "--bench",
    type=click.IntRange(0, None),
    default=0,
    metavar="N",
    help="Instead of serving: start on a free loopback port, send N requests "
    "(one at a time, then 32 at a time), print latencies and exit.",
)
@RUNS_DIR_OPTION
def serve(
    run: str, host: str, port: int, engine: str, max_upload_mb: float, bench: int, runs_dir: str
) -> None:
    """Serve a model over HTTP (FastAPI + Uvicorn) with a drawing page at /.

    POST /v1/predict (image upload, raw image or JSON 28x28), POST /v1/predict/batch,
    GET /v1/model, GET /v1/stats (in-server latency), GET /healthz, docs at /docs.

    \b
    Example:
      mnistlab serve runs/latest --port 8000
      curl -F file=@samples/7/photo.jpg http://127.0.0.1:8000/v1/predict
      mnistlab serve runs/latest --bench 2000
    """
    import logging
    import urllib.request

    from mnistlab.serve import benchmark, server_process

    if bench:
        # The server runs as its own process (as in use), the client here.
        with server_process(run, runs_dir=runs_dir, engine=engine) as url:
            rows = {
                "sequential": benchmark(url, requests=bench, concurrency=1),
                "concurrent-32": benchmark(url, requests=bench, concurrency=32),
            }
            with urllib.request.urlopen(f"{url}/v1/stats") as resp:
                stats = json.loads(resp.read())
        inference = stats["inference"]
        click.echo(f"engine {stats['engine']}, JSON 28x28 requests to {url} (loopback)")
        click.echo(
            f"{'HTTP round trip':<18} {'requests':>8} {'errors':>6} {'req/s':>8} "
            f"{'p50 ms':>8} {'p99 ms':>8}"
        )
        for name, r in rows.items():
            click.echo(
                f"{name:<18} {r['requests']:>8} {r['errors']:>6} {r['rps']:>8} "
                f"{r['p50_ms']:>8} {r['p99_ms']:>8}"
            )
        click.echo(
            f"in-server inference (model call only, {inference['n']} single images): "
            f"p50 {inference['p50_ms']} ms, p99 {inference['p99_ms']} ms"
        )
        if any(r["errors"] for r in rows.values()):
            raise MnistlabError(f"the benchmark saw errors: {rows}")
        return

    from mnistlab.serve import create_app, listen_socket, load_for_serving, run_server

    logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")
    sock = listen_socket(host, port)  # a port in use or a bad --host: one line, before loading
    port = sock.getsockname()[1]  # the one the system chose for --port 0
    predictor = load_for_serving(run, runs_dir, engine=engine)
    app = create_app(predictor, max_upload_bytes=int(max_upload_mb * 1024 * 1024))
    announce = f"serving {predictor.name} ({predictor.engine}) on http://{host}:{port}/"
    run_server(app, host=host, port=port, announce=announce, sock=sock)
