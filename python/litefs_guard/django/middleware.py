"""Django middleware for LiteFS replicas.

``ReplayOnPrimaryMiddleware``: a request whose view fails on a replica with
:class:`~litefs_guard.NotPrimaryError` is sent to the primary instead of
becoming a 500::

    MIDDLEWARE = [
        ...,
        "litefs_guard.django.middleware.ReplayOnPrimaryMiddleware",   # last
    ]
    # Optional: redirect (307) instead of Fly.io's fly-replay header.
    LITEFS_PRIMARY_URL = "http://{primary}:8000"

- Default (Fly.io): an empty ``409`` response with
  ``fly-replay: instance=<primary>``, where ``<primary>`` is the primary's
  hostname from ``.primary`` (on Fly.io a Machine's hostname is its ID).
  Fly's proxy replays the whole request, body included, on that Machine;
  this is what LiteFS's own proxy and litefs-js do.
- ``LITEFS_PRIMARY_URL`` set: a ``307`` redirect to that base URL, with
  ``{primary}`` replaced by the primary's hostname, followed by the
  request's path and query string. 307 keeps the method and body.
- The primary unknown (a replica that lost its primary, LiteFS not running):
  ``503`` with the guard's reason as text; never a replay or redirect.
- A request that already is a Fly replay (``Fly-Replay-Src`` header) and is
  refused again gets the 503 as well, so a stale ``.primary`` cannot make
  requests bounce between Machines.

Only a refusal raised by the view (or by rendering its ``TemplateResponse``)
is handled, through ``process_exception``: nothing was sent yet and, the
guard having refused the write, nothing was written to the database. Not
handled, the error passing on as usual: a refusal while a
``StreamingHttpResponse`` is being sent (the status line is out), and one
raised in another middleware (e.g. a database-backed session saved by
``SessionMiddleware`` on the way out). List this middleware last so that
its ``process_exception`` runs first.

Every method is replayed, POST included: that is the point. What the view
did before its first refused write (an e-mail, a call to another service, a
write to another database) happens again on the primary; write to the
LiteFS database first, or check ``litefs_guard`` status up front, in views
where that matters.
"""

from typing import Any, Optional

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse

import litefs_guard

from .read_your_writes import ReadYourWritesMiddleware

__all__ = ["ReadYourWritesMiddleware", "ReplayOnPrimaryMiddleware"]

#: Response header Fly.io's proxy acts on.
FLY_REPLAY = "fly-replay"
#: Request header Fly.io's proxy adds to a replayed request.
FLY_REPLAY_SRC = "HTTP_FLY_REPLAY_SRC"


def _not_primary(exc: BaseException) -> Optional[litefs_guard.NotPrimaryError]:
    """``exc`` or an exception it was raised from (``__cause__``), when that
    is a NotPrimaryError."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, litefs_guard.NotPrimaryError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__
    return None


class ReplayOnPrimaryMiddleware:
    """Sends a request refused on a replica to the primary (see the module)."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)

    def process_exception(self, request: Any, exception: BaseException) -> Optional[HttpResponse]:
        err = _not_primary(exception)
        if err is None:
            return None
        primary = err.primary
        if not primary:
            return self.unavailable(err.reason or str(err))
        if request.META.get(FLY_REPLAY_SRC):
            return self.unavailable(
                f"this node is a replica; the primary is {primary}, but this request was "
                f"already replayed ({request.META[FLY_REPLAY_SRC]})"
            )
        base = getattr(settings, "LITEFS_PRIMARY_URL", None)
        if base:
            return self.redirect(request, base, primary)
        return self.replay(primary)

    def replay(self, primary: str) -> HttpResponse:
        response = HttpResponse(status=409)
        response[FLY_REPLAY] = f"instance={primary}"
        response["Cache-Control"] = "no-store"
        return response

    def redirect(self, request: Any, base: str, primary: str) -> HttpResponse:
        if not isinstance(base, str) or "://" not in base:
            raise ImproperlyConfigured(
                f"LITEFS_PRIMARY_URL must be a URL such as 'http://{{primary}}:8000', not {base!r}"
            )
        url = base.replace("{primary}", primary).rstrip("/") + request.get_full_path()
        response = HttpResponse(status=307)
        response["Location"] = url
        response["Cache-Control"] = "no-store"
        return response

    def unavailable(self, reason: str) -> HttpResponse:
        response = HttpResponse(
            f"not the LiteFS primary, and no primary to send this request to: {reason}\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
        response["Cache-Control"] = "no-store"
        return response
