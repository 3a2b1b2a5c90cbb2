"""``manage.py django_q_probettp``: the probe/metrics server under its original name.

Same flags and environment variables as ``python -m exporter serve``; the
Django settings are the ones manage.py already loaded.
"""

import os

from django.core.management.base import BaseCommand, CommandError

from exporter.__main__ import serve
from exporter.config import ConfigError, add_arguments, from_sources


class Command(BaseCommand):
    help = "Serve /healthz, /readyz, /livez and /metrics for the django-q2 cluster of this host."
    requires_system_checks: list = []

    def add_arguments(self, parser):
        add_arguments(parser)

    def handle(self, *args, **options):
        class Namespace:
            pass

        ns = Namespace()
        for key, value in options.items():
            setattr(ns, key, value)
        if not getattr(ns, "django_settings", None):
            ns.django_settings = os.environ.get("DJANGO_SETTINGS_MODULE")
        try:
            serve(from_sources(ns, os.environ))
        except ConfigError as exc:
            # Exit 2 like ``python -m exporter serve``: callers tell bad config from a crash.
            raise CommandError(f"configuration error: {exc}", returncode=2) from None
