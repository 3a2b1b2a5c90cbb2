"""The exporter decodes Stats as django-q2 does (a child process with real django-q2 and
Django settings; no server)."""

import subprocess

from tests.procs import PYTHON, ROOT, base_env


def test_stat_decodes_as_django_q2_decodes_it(tmp_path):
    """The exporter's Stat decoding (which builds the lazy status proxy class once, not
    once per Stat) gives what django-q2's own SignedPackage.loads gives, under the
    workers' SECRET_KEY and cluster name, and still rejects a foreign signature."""
    code = """
import django; django.setup()
import uuid
from types import SimpleNamespace as NS
from django.conf import settings
from django.utils import timezone
from django_q.conf import Conf
from django_q.signing import SignedPackage
from django_q.status import Stat
from exporter.sources import decode

empty = NS(qsize=lambda: 0)
stat = Stat(NS(parent_pid=10, pid=11, cluster_id=uuid.uuid4(), broker=object(),
               tob=timezone.now(), reincarnations=2, status=lambda: Conf.WORKING,
               result_queue=empty, task_queue=empty, monitor=NS(pid=12), pusher=NS(pid=13),
               pool=[NS(pid=14), NS(pid=15)]))
pack = SignedPackage.dumps(stat, True)
theirs = SignedPackage.loads(pack)
ours = [decode.loads(pack.encode(), settings.SECRET_KEY, Conf.PREFIX) for _ in range(2)]
assert vars(ours[0]) == vars(theirs), (vars(ours[0]), vars(theirs))
assert str(ours[0].status) == str(theirs.status) == "Working"
assert type(ours[0].status) is type(ours[1].status)
view = decode.to_cluster_stat(ours[1], Conf.PREFIX)
assert (view.status, view.workers, view.reincarnations) == ("working", (14, 15), 2), view
try:
    decode.loads(pack, "another-secret", Conf.PREFIX)
except decode.BadSignature:
    print("ok")
"""
    env = base_env(DJANGO_Q_DATA_DIR=str(tmp_path), DJANGO_SECRET_KEY="speedup-secret",
                   DJANGO_Q_NAME="speedups")
    done = subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
