"""Dependencies of the routers, as ``Annotated`` aliases: the service state and the caller's key;
and the app's own: every query parameter must be one the route declares."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from assay.service._errors import ApiError, quoted, redacted
from assay.service._state import ServiceState
from assay.store import ApiKey

_bearer = HTTPBearer(auto_error=False, description="An API key from `assay keys create`.")


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.assay
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def get_key(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ApiKey:
    """The caller's active key, from ``Authorization: Bearer <key>``; 401 without one."""
    if credentials is None:
        raise _unauthorized(
            "missing or malformed Authorization header; send 'Authorization: Bearer <key>' "
            "with a key from `assay keys create`"
        )
    key = state.keys.verify(credentials.credentials.strip())
    if key is None:
        raise _unauthorized(
            "the API key is unknown or revoked; check it, or create a new one with "
            "`assay keys create`"
        )
    request.state.key_id = key.key_id
    return key


def _scoped(scope: str, key: ApiKey) -> ApiKey:
    if scope not in key.scopes:
        raise ApiError(
            403,
            "forbidden_scope",
            f"this key (id {key.key_id}) has scopes {','.join(key.scopes)}, not {scope}; "
            f"create a key with --scope {scope}",
        )
    return key


def ingest_key(key: Annotated[ApiKey, Depends(get_key)]) -> ApiKey:
    return _scoped("ingest", key)


def read_key(key: Annotated[ApiKey, Depends(get_key)]) -> ApiKey:
    return _scoped("read", key)


def predict_key(key: Annotated[ApiKey, Depends(get_key)]) -> ApiKey:
    return _scoped("predict", key)


IngestKey = Annotated[ApiKey, Depends(ingest_key)]
ReadKey = Annotated[ApiKey, Depends(read_key)]
PredictKey = Annotated[ApiKey, Depends(predict_key)]


def _own_tenant(key: ApiKey, tenant_id: str | None, does: str) -> str | None:
    if key.tenant_id is None:
        return tenant_id
    if tenant_id is not None and tenant_id != key.tenant_id:
        raise ApiError(
            403,
            "forbidden_tenant",
            f"this key (id {key.key_id}) {does} its own tenant only, not the tenant asked for; "
            "omit tenant_id or use a key of that tenant",
            field="tenant_id",
        )
    return key.tenant_id


def tenant_for_read(key: ApiKey, tenant_id: str | None) -> str | None:
    """The tenant a read is about: a tenant key reads its own tenant only (403 otherwise);
    an admin key reads ``tenant_id``, or every tenant when it is None."""
    return _own_tenant(key, tenant_id, "reads")


def tenant_for_predict(key: ApiKey, tenant_id: str | None) -> str | None:
    """The tenant a prediction is made for: a tenant key predicts for its own tenant only
    (403 for another); an admin key for ``tenant_id`` (None when it names none)."""
    return _own_tenant(key, tenant_id, "predicts for")


def _query_names(dependant: Dependant) -> tuple[str, ...]:
    """The query parameters ``dependant`` and its sub-dependencies declare, by their names."""
    names = [p.alias for p in dependant.query_params]
    for sub in dependant.dependencies:
        names += _query_names(sub)
    return tuple(dict.fromkeys(names))


async def known_query(request: Request) -> None:
    """422 for a query parameter the route does not declare (``?tenant=`` for ``tenant_id``
    would otherwise be ignored, and the answer would be about something else).

    ``async`` though it awaits nothing: FastAPI runs a plain ``def`` dependency in its thread
    pool, a thread hop per request for a few dictionary look-ups.
    """
    if not request.query_params:
        return
    dependant = getattr(request.scope.get("route"), "dependant", None)
    accepted = _query_names(dependant) if isinstance(dependant, Dependant) else ()
    for name in request.query_params:
        if name not in accepted:
            route = getattr(request.scope.get("route"), "path", request.url.path)
            takes = f"accepts {', '.join(accepted)}" if accepted else "takes no query parameters"
            raise ApiError(
                422,
                "unknown_parameter",
                f"unknown query parameter {quoted(name, 60)}; {route} {takes} (see /openapi.json)",
                field=redacted(name, 60),
                rule="unknown",
            )
