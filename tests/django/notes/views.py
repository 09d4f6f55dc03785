"""Views of the test project, for ReplayOnPrimaryMiddleware (test_middleware.py)."""

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from notes.models import Note


def notes(request):
    """GET: the notes' titles (a read: works on every node)."""
    return JsonResponse({"titles": sorted(Note.objects.values_list("title", flat=True))})


def write(request):
    """Any method: creates a note titled ?title= or POST title= (a write)."""
    title = request.POST.get("title") or request.GET.get("title") or "untitled"
    note = Note.objects.create(title=title)
    return JsonResponse({"id": note.pk, "title": note.title})


def stream(request):
    """A streaming response that writes while it is being sent."""

    def body():
        yield "started\n"
        Note.objects.create(title="streamed")
        yield "written\n"

    return StreamingHttpResponse(body(), content_type="text/plain")


class AppError(Exception):
    pass


def wrapped(request):
    """The application's own exception, raised from the refusal."""
    try:
        Note.objects.create(title="wrapped")
    except Exception as exc:
        raise AppError("could not save") from exc
    return HttpResponse("ok")


def boom(request):
    raise ValueError("not a refusal")
