"""WSGI entry point: `gunicorn guestbook_site.wsgi` (see examples/fly/)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "guestbook_site.settings")
application = get_wsgi_application()
