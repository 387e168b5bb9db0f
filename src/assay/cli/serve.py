"""`assay serve`: the HTTP service on uvicorn, one process."""

from __future__ import annotations

import signal
import socket
from typing import Annotated

import typer

from assay._errors import UsageError
from assay.cli import _output
from assay.cli._common import WorkspaceOpt, handle_errors

#: ``assay.profiles.DEFAULT_REFRESH_INTERVAL``, written out: the CLI imports profiles lazily.
PROFILE_INTERVAL = 60.0
#: ``assay.models._serving.ServingConfig``'s defaults, written out for the same reason.
PREDICT_DEFAULTS: dict[str, float] = {
    "max_batch": 64,
    "max_wait_ms": 1.0,
    "max_queue": 2048,
    "max_inputs": 256,
    "max_text_chars": 4096,
    "refresh_seconds": 5.0,
    "key_requests": 64,
}


def _check_address(host: str, port: int) -> None:
    """Fail with a usage error, not uvicorn's exit, when the address cannot be listened on."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UsageError(f"--host {host!r} is not an address of this machine") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc}); another server may "
                "be using the port: choose another --port, or stop that server"
            ) from None


def serve(
    workspace: WorkspaceOpt = None,
    host: Annotated[
        str, typer.Option("--host", envvar="ASSAY_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", envvar="ASSAY_PORT", help="Port to listen on.", min=0)
    ] = 8000,
    log_level: Annotated[
        str,
        typer.Option("--log-level", help="uvicorn's log level (access logs are assay's JSON)."),
    ] = "warning",
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="One JSON line per request on stderr (no query strings, bodies, ids or keys).",
        ),
    ] = True,
    profile_interval: Annotated[
        float,
        typer.Option(
            "--profile-interval",
            envvar="ASSAY_PROFILE_INTERVAL",
            min=0,
            help="Least seconds between two background rebuilds of the profiles after events "
            "are committed (only where profiles were built before); 0 turns them off.",
        ),
    ] = PROFILE_INTERVAL,
    predict_max_batch: Annotated[
        int,
        typer.Option(
            "--predict-max-batch",
            envvar="ASSAY_PREDICT_MAX_BATCH",
            min=1,
            help="Most inputs one ONNX Runtime call scores (concurrent predict requests to one "
            "model version are batched up to this).",
        ),
    ] = int(PREDICT_DEFAULTS["max_batch"]),
    predict_max_wait_ms: Annotated[
        float,
        typer.Option(
            "--predict-max-wait-ms",
            envvar="ASSAY_PREDICT_MAX_WAIT_MS",
            min=0,
            help="Milliseconds an idle model version waits for more requests before scoring a "
            "batch that is not full (0: at once).",
        ),
    ] = PREDICT_DEFAULTS["max_wait_ms"],
    predict_max_queue: Annotated[
        int,
        typer.Option(
            "--predict-max-queue",
            envvar="ASSAY_PREDICT_MAX_QUEUE",
            min=1,
            help="Most inputs waiting per model version; more are refused with 429.",
        ),
    ] = int(PREDICT_DEFAULTS["max_queue"]),
    predict_max_inputs: Annotated[
        int,
        typer.Option(
            "--predict-max-inputs",
            envvar="ASSAY_PREDICT_MAX_INPUTS",
            min=1,
            help="Most inputs in one predict request (more: 413).",
        ),
    ] = int(PREDICT_DEFAULTS["max_inputs"]),
    predict_max_text_chars: Annotated[
        int,
        typer.Option(
            "--predict-max-text-chars",
            envvar="ASSAY_PREDICT_MAX_TEXT_CHARS",
            min=1,
            help="Longest text an intent model is sent, in characters (longer: 413).",
        ),
    ] = int(PREDICT_DEFAULTS["max_text_chars"]),
    predict_refresh_seconds: Annotated[
        float,
        typer.Option(
            "--predict-refresh-seconds",
            envvar="ASSAY_PREDICT_REFRESH_SECONDS",
            min=0,
            help="Least seconds between two look-ups of where a served alias points (a moved "
            "alias is swapped in without dropping requests).",
        ),
    ] = PREDICT_DEFAULTS["refresh_seconds"],
    predict_key_requests: Annotated[
        int,
        typer.Option(
            "--predict-key-requests",
            envvar="ASSAY_PREDICT_KEY_REQUESTS",
            min=1,
            help="Most predict requests of one API key in flight (more: 429).",
        ),
    ] = int(PREDICT_DEFAULTS["key_requests"]),
) -> None:
    """Serve ingestion and the read API over HTTP (FastAPI on uvicorn, one process).

    Profiles built before are kept current in the background (at most one rebuild per
    --profile-interval seconds). Registered models answer POST /v1/models/NAME/predict
    (the --predict-* options bound it). SIGTERM or Ctrl-C stops accepting, answers what is in flight
    and commits it, then exits.
    """
    with handle_errors():
        import logging

        import uvicorn

        if access_log:
            logging.getLogger("assay.access").setLevel(logging.INFO)

        from assay.models._serving import ServingConfig
        from assay.service import create_app, http_protocol
        from assay.store import Workspace

        with Workspace.open(workspace) as ws:  # fail here, clearly, if there is none
            path = ws.path
        _check_address(host, port)
        serving = ServingConfig(
            max_batch=predict_max_batch,
            max_wait_ms=predict_max_wait_ms,
            max_queue=predict_max_queue,
            max_inputs=predict_max_inputs,
            max_text_chars=predict_max_text_chars,
            refresh_seconds=predict_refresh_seconds,
            key_requests=predict_key_requests,
        )
        app = create_app(path, profile_interval=profile_interval, serving=serving)

        def stopped(signum: int, frame: object) -> None:
            # uvicorn drains, then re-raises the SIGTERM it caught: end with 0 (done), not -15.
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, stopped)
        _output.message(f"assay serve: workspace {path}, listening on http://{host}:{port}")
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,  # assay writes its own, without query strings
            loop="auto",
            http=http_protocol(path),  # uvicorn's, with a deadline for headers
            timeout_keep_alive=5,  # idle keep-alive connections close after 5 s
            # No limit_concurrency: uvicorn counts idle connections against it, so a client
            # holding many would turn it into a 503 for everyone; the service bounds work per key.
            timeout_graceful_shutdown=30,
        )
