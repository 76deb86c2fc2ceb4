"""A registered model served by the real ``mlflow models serve`` on a free loopback port (MLflow's
own command, forked warm: :mod:`tests.helpers.warm_cli`)."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from tests.helpers import warm_cli
from tests.helpers.runs import Store
from tests.helpers.services import free_port

Invoke = Callable[[pd.DataFrame], tuple[int, Any]]


def _body(frame: pd.DataFrame) -> bytes:
    """``frame`` as the scoring server's ``dataframe_split`` JSON (days as ISO text)."""
    columns = {
        c: frame[c].dt.strftime("%Y-%m-%d") if pd.api.types.is_datetime64_any_dtype(frame[c]) else frame[c]
        for c in frame.columns
    }
    frame = pd.DataFrame(columns)
    return json.dumps({"dataframe_split": {"columns": list(frame.columns), "data": frame.values.tolist()}}).encode()


@contextmanager
def served(store: Store, model_uri: str, timeout: float = 120, env: dict[str, str] | None = None) -> Iterator[Invoke]:
    """Start ``mlflow models serve -m model_uri`` and wait until it answers; the block gets a
    function that posts a frame to ``/invocations`` and returns the HTTP status and the JSON
    answer. ``env`` adds variables to the server's (a plugin's ``PYTHONPATH``). The server stops
    when the block ends."""
    port = free_port()
    server = warm_cli.start(
        ["models", "serve", "-m", model_uri, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        store.env() | (env or {}),
        store.root,
    )

    def invoke(frame: pd.DataFrame) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", data=_body(frame), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=5):
                    break
            except OSError:
                if time.time() > deadline or server.exitcode is not None:
                    raise
                time.sleep(1)
        yield invoke
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # type: ignore[arg-type]  # started: it has a pid
        server.join(timeout=30)


def serve_and_invoke(
    store: Store, model_uri: str, frame: pd.DataFrame, timeout: float = 120, env: dict[str, str] | None = None
) -> Any:
    """Serve ``model_uri``, post ``frame`` once, and return the ``predictions`` of a 200 answer."""
    with served(store, model_uri, timeout, env) as invoke:
        status, answer = invoke(frame)
    assert status == 200, answer
    return answer["predictions"]
