"""The contract the task side (``rsr_tasks``) and the exporter share.

Both packages import this one and it imports neither, so what the workers
write and what the exporter reads is defined in exactly one place: the key
layout (``keys``), the heartbeat record (``records``), the per-pod metric
store (``podstore``), the bounded Redis client (``redisconn``) and every
metric family the project exposes (``catalogue``). Standard library only at
import time: a worker that loads the contract pulls in no exporter code and
no Prometheus client.
"""
