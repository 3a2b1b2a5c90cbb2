"""Peer baseline: the demo settings plus a Django-view health check (bench only)."""

from rsr_tasks.demo.settings import *  # noqa: F403

ROOT_URLCONF = "bench.peer.urls"
