"""A latency benchmark of a running server: many ``POST /v1/predict``, some at a time.

The client measures round trips over keep-alive HTTP connections (one per worker
thread); ``mnistlab serve --bench N`` prints them beside the server's own
model-call latency (``GET /v1/stats``).
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from typing import Any

import numpy as np

__all__ = ["benchmark"]


def benchmark(
    base_url: str,
    *,
    requests: int = 2000,
    concurrency: int = 32,
    body: bytes | None = None,
    content_type: str = "application/json",
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Send ``requests`` POST /v1/predict, ``concurrency`` at a time, on keep-alive connections.

    Parameters
    ----------
    base_url : e.g. ``http://127.0.0.1:8000`` (loopback).
    requests : how many requests in all.
    concurrency : worker threads, each with its own connection.
    body, content_type : the request; default a JSON 28x28 image of a 7.

    Returns
    -------
    ``{"requests", "concurrency", "errors", "seconds", "rps", "p50_ms", "p99_ms"}``:
    round-trip times measured by the client.

    Examples
    --------
    >>> benchmark("http://127.0.0.1:8000", requests=500, concurrency=1)["p50_ms"]  # doctest: +SKIP
    1.9
    """
    from urllib.parse import urlsplit

    if body is None:
        img = np.zeros((28, 28))
        img[5:8, 6:22] = 1
        for r in range(8, 24):  # the 7's diagonal
            c = int(21 - (r - 8) * 0.6)
            img[r, c - 1 : c + 2] = 1
        body = json.dumps({"image": img.tolist()}).encode()
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(requests))

    def worker() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            while True:
                with lock:
                    if next(counter, None) is None:
                        return
                start = time.perf_counter()
                try:
                    conn.request(
                        "POST", "/v1/predict", body=body, headers={"Content-Type": content_type}
                    )
                    resp = conn.getresponse()
                    payload = resp.read()
                    ms = (time.perf_counter() - start) * 1000
                    ok = resp.status == 200 and b'"digit"' in payload
                except (OSError, http.client.HTTPException) as err:
                    ms, ok = 0.0, False
                    payload = str(err).encode()
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=timeout)
                with lock:
                    if ok:
                        times.append(ms)
                    else:
                        errors.append(payload[:200].decode(errors="replace"))
        finally:
            conn.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    arr = np.array(times) if times else np.array([math.nan])
    return {
        "requests": requests,
        "concurrency": concurrency,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "seconds": round(seconds, 3),
        "rps": round(requests / seconds, 1),
        "p50_ms": round(float(np.percentile(arr, 50)), 3),
        "p99_ms": round(float(np.percentile(arr, 99)), 3),
    }
