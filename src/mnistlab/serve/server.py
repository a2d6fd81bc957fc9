"""Running the app: Uvicorn on a socket bound here, in this process, a thread or a child.

:func:`listen_socket` binds first, so a port in use or a host that does not
resolve is one :class:`~mnistlab.errors.MnistlabError` line (Uvicorn would log and
``sys.exit(3)``). :func:`run_server` serves until interrupted;
:func:`start_in_thread` serves in the background of this process (tests);
:func:`server_process` runs ``mnistlab serve`` as a child process, as in
production, and yields its URL once ``/healthz`` answers.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from mnistlab.errors import MnistlabError
from mnistlab.predict import Predictor, load_predictor

__all__ = [
    "free_port",
    "listen_socket",
    "load_for_serving",
    "run_server",
    "server_process",
    "start_in_thread",
]

log = logging.getLogger("mnistlab.serve")


def load_for_serving(ref: str, runs_dir: str | Path = "runs", engine: str = "auto") -> Predictor:
    """Load a model for the server: onnxruntime when it converts, else tf.function.

    ``engine="auto"`` tries ONNX (a forward pass ~20x cheaper than TensorFlow's per
    call) and falls back to ``"tf"`` with a logged reason.
    """
    # tf2onnx narrates its graph optimisations at INFO; that is not news for a server log.
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    if engine != "auto":
        return load_predictor(ref, runs_dir, engine=engine)
    try:
        return load_predictor(ref, runs_dir, engine="onnx")
    except ImportError as err:
        log.warning("onnxruntime unavailable (%s); serving with TensorFlow", err)
    except MnistlabError:
        raise
    except Exception as err:  # a conversion failure: TensorFlow still serves the model
        log.warning(
            "ONNX conversion failed (%s: %s); serving with TensorFlow", type(err).__name__, err
        )
    return load_predictor(ref, runs_dir, engine="tf")


def run_server(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "info",
    *,
    announce: str | None = None,
    sock: socket.socket | None = None,
) -> None:
    """Serve ``app`` with Uvicorn until interrupted (access log off: it costs latency).

    The socket is bound here (or given: ``sock`` from :func:`listen_socket`), not by
    Uvicorn: a port in use or a host that does not resolve raises
    :class:`MnistlabError` (one line), where Uvicorn would log and ``sys.exit(3)``.
    ``announce`` is printed once the socket listens.
    """
    import uvicorn

    sock = sock or listen_socket(host, port)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)
    if announce:
        print(announce, flush=True)
    else:
        url_host = f"[{host}]" if ":" in host else host
        log.info("listening on http://%s:%d/", url_host, sock.getsockname()[1])
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()


def listen_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host:port`` (as Uvicorn binds it); MnistlabError if not."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        address = socket.getaddrinfo(
            host or None, port, family, socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0][4]
    except (OSError, UnicodeError) as err:  # gaierror, or an over-long label ("a" * 64)
        reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise MnistlabError(
            f"cannot listen on {where}: the host {host!r} does not resolve ({reason}); "
            "use an address of this machine such as 127.0.0.1 or 0.0.0.0"
        ) from err
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as err:
        sock.close()
        reason = (err.strerror or str(err)).lower()
        hint = {
            errno.EADDRINUSE: "another program listens there; stop it or choose another --port",
            errno.EACCES: "ports below 1024 need privileges; choose another --port such as 8000",
            errno.EADDRNOTAVAIL: "not an address of this machine; use 127.0.0.1 or 0.0.0.0",
        }.get(err.errno or 0, "choose another --host or --port")
        raise MnistlabError(f"cannot listen on {where}: {reason} ({hint})") from err
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def server_process(
    ref: str | Path,
    *,
    runs_dir: str | Path = "runs",
    engine: str = "auto",
    host: str = "127.0.0.1",
    port: int = 0,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 180.0,
    log_path: str | Path | None = None,
) -> Iterator[str]:
    """Run ``mnistlab serve`` in a child process; yield its base URL once /healthz answers.

    The server is a separate process, as in production, so a client in this process
    does not share its interpreter (or its GIL). Stopped (SIGTERM, then SIGKILL)
    on exit.

    Examples
    --------
    >>> with server_process("runs/latest") as url:  # doctest: +SKIP
    ...     print(benchmark(url, requests=200))  # doctest: +SKIP
    """
    import subprocess
    import sys
    import urllib.request

    port = port or free_port(host)
    url = f"http://{host}:{port}"
    cmd = [sys.executable, "-m", "mnistlab", "serve", str(ref), "--host", host]
    cmd += ["--port", str(port), "--engine", engine, "--runs-dir", str(runs_dir), *extra_args]
    log_file = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise MnistlabError(
                    f"'mnistlab serve' exited with code {proc.returncode} before answering"
                    + (f"; see {log_path}" if log_path else "")
                )
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise MnistlabError(
                    f"the server on {url} did not answer within {startup_timeout} s"
                )
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log_path:
            log_file.close()  # type: ignore[union-attr]


def start_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> tuple[Any, str]:
    """Start Uvicorn on a background thread; return (server, base URL).

    Stop it with ``server.should_exit = True``. ``port=0`` picks a free port.
    """
    import uvicorn

    port = port or free_port(host)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise MnistlabError(f"the server did not start on {host}:{port}")
        time.sleep(0.01)
    return server, f"http://{host}:{port}"
