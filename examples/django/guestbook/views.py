"""The guestbook's views: plain Django. The same code runs on every node:

- on the primary, writes succeed;
- on a replica, a write raises litefs_guard.django.NotPrimaryError, which
  ReplayOnPrimaryMiddleware (settings.MIDDLEWARE) turns into "ask the primary"
  (409 + fly-replay, or a 307) — unless forward_writes is on, in which case the
  replica writes through LiteFS's halt lock;
- ReadYourWritesMiddleware makes a client's next request wait for its own
  writes on whichever node serves it.

Only `node` mentions LiteFS: it asks the guard what it knows about this node.
"""

import json

from django.db import connection, transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET, require_http_methods

from .models import Entry, Guest


@require_http_methods(["GET", "POST"])
def entries(request):
    """GET: the 20 latest entries. POST name=…&text=…: sign the guestbook (201)."""
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        text = request.POST.get("text", "").strip()
        if not name or not text:
            return JsonResponse({"error": "name and text are required"}, status=400)
        with transaction.atomic():
            guest, _ = Guest.objects.get_or_create(name=name)
            entry = Entry.objects.create(guest=guest, text=text)
        return JsonResponse(entry.as_json(), status=201)
    latest = Entry.objects.select_related("guest")[:20]
    return JsonResponse({"entries": [e.as_json() for e in latest]})


@require_GET
def entry(request, pk):
    """One entry, or 404."""
    found = get_object_or_404(Entry.objects.select_related("guest"), pk=pk)
    return JsonResponse(found.as_json())


@require_GET
def node(request):
    """This node as the guard sees it: its role (primary or replica), the
    primary's name on a replica, and whether this process forwards writes."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT litefs_config()")
        config = json.loads(cursor.fetchone()[0])
    return JsonResponse({key: config[key] for key in ("role", "primary", "forwarding")})
