"""``manage.py demo``: migrate, register recurring jobs, run qcluster + probe server.

Only with the demo's settings (``rsr_tasks.demo.settings`` or a module beside it).

Both children get SIGTERM when the demo is interrupted; the demo exits when
either child exits.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from djq_contract.endpoints import DEFAULT_PORT


class Command(BaseCommand):
    help = "Run the demo: a django-q2 cluster with recurring unique jobs plus the probe server."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=int(
            os.environ.get("DEMO_PORT", DEFAULT_PORT)))
        parser.add_argument("--duration", type=float, default=0,
                            help="stop after this many seconds (0: run until Ctrl-C)")

    def handle(self, *args, **options):
        from rsr_tasks.demo.jobs import register_schedules

        # The command ships with the app, so it exists in every project that installs
        # it: never write the demo's schedules into someone else's database.
        module = getattr(settings, "SETTINGS_MODULE", None) or ""
        if not module.startswith("rsr_tasks.demo."):
            raise CommandError(f"the demo runs with its own settings (rsr_tasks.demo.settings), "
                               f"not {module or 'these settings'}; in your project run "
                               "qcluster and django_q_probettp instead")

        call_command("migrate", interactive=False, verbosity=0)
        for alias in settings.DATABASES:
            call_command("createcachetable", database=alias, verbosity=0)
        names = register_schedules()
        self.stdout.write(f"registered schedules: {', '.join(names)}")
        manage = [sys.executable, "manage.py"]
        port = options["port"]
        env = dict(os.environ, DJANGO_Q_EXPORTER_LISTEN_ADDRESS=f"127.0.0.1:{port}")
        children = [
            subprocess.Popen(manage + ["qcluster"], env=env),
            subprocess.Popen(manage + ["django_q_probettp"], env=env),
        ]
        base = f"http://127.0.0.1:{port}"
        self.stdout.write(f"probe server:  {base}/\n  health:  {base}/healthz?verbose=1\n"
                          f"  metrics: {base}/metrics\nCtrl-C stops the demo.")
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        deadline = time.monotonic() + options["duration"] if options["duration"] else None
        while not stopping and all(c.poll() is None for c in children):
            if deadline and time.monotonic() > deadline:
                break
            time.sleep(0.2)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        self.stdout.write("demo stopped")
