"""Views for the read-your-writes tests (ROOT_URLCONF in test_read_your_writes.py)."""

from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from notes.models import Note


def _titles():
    return sorted(Note.objects.values_list("title", flat=True))


@csrf_exempt
def notes(request):
    if request.method == "POST":
        Note.objects.create(title=request.POST["title"])
    return JsonResponse({"titles": _titles()})


def unchanged(request):
    """Runs a write that changes no row."""
    Note.objects.filter(title="no such note").update(body="x")
    return JsonResponse({"titles": _titles()})


def floor(request):
    with connection.cursor() as c:
        return JsonResponse({"floor": c.execute("PRAGMA litefs_min_txid").fetchone()[0]})


def static(request):
    return HttpResponse("no database")


def reopen(request):
    """Closes its connection first: the read that follows opens a new one."""
    connection.close()
    return JsonResponse({"titles": _titles()})


def beyond(request):
    """Raises the floor past this node's position itself, then reads: the
    refusal reaches the middleware as an exception."""
    with connection.cursor() as c:
        c.execute("PRAGMA litefs_wait_ms = 50")
        c.execute("PRAGMA litefs_min_txid = 99")
    return JsonResponse({"titles": _titles()})


urlpatterns = [
    path("beyond", beyond),
    path("notes", notes),
    path("unchanged", unchanged),
    path("floor", floor),
    path("static", static),
    path("reopen", reopen),
]
