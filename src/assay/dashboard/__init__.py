"""The web dashboard of ``assay serve``: server-rendered pages under ``/ui/``.

A face like ``cli`` and ``service``: it reads the library's APIs and renders them. The service
mounts it with :func:`mount`; pages use :data:`User` / :data:`CsrfUser` for the signed-in key,
:func:`require_tenant` for tenant isolation and :func:`render` for HTML.
"""

from assay.dashboard._app import mount
from assay.dashboard._auth import (
    CsrfUser,
    UiError,
    UiUser,
    User,
    backend,
    current_user,
    form_data,
    not_found,
    require_tenant,
)
from assay.dashboard._render import render

__all__ = [
    "CsrfUser",
    "UiError",
    "UiUser",
    "User",
    "backend",
    "current_user",
    "form_data",
    "mount",
    "not_found",
    "render",
    "require_tenant",
]
