"""The HTTP service (``assay serve``): ingestion with per-event answers, and the read API.

One router per resource (:mod:`assay.service.routers`), dependencies in
:mod:`assay.service.deps`, one error shape for every error (:mod:`assay.service._errors`).
"""

from assay.service._app import create_app

__all__ = ["create_app"]
