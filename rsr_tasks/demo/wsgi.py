"""WSGI entry point of the demo project (the web container of docker-compose)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rsr_tasks.demo.settings")
application = get_wsgi_application()
