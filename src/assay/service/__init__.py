"""The HTTP service (``assay serve``): ingestion with per-event answers, and the read API.

One router per resource (:mod:`assay.service.routers`), dependencies in
:mod:`assay.service.deps`, one error shape for every error (:mod:`assay.service._errors`).
:func:`http_protocol` is the uvicorn protocol ``assay serve`` runs it with (uvicorn's, with a
deadline for request headers).
"""

from assay.service._app import create_app
from assay.service._server import http_protocol

__all__ = ["create_app", "http_protocol"]
