"""Task functions run by real qclusters in tests (importable by the workers)."""

import time


def quick(i: int) -> int:
    time.sleep(0.05)
    return i


def boom(i: int) -> None:
    raise RuntimeError(f"boom {i}")


def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "never: the cluster's timeout is shorter"


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _custom_redis_broker():
    """A project's own Redis broker class (for the index-install test)."""
    from django_q.brokers.redis_broker import Redis

    class CustomRedis(Redis):
        def info(self) -> str:
            return "custom"

    CustomRedis.__module__, CustomRedis.__qualname__ = __name__, "CustomRedis"
    return CustomRedis


def __getattr__(name: str):
    if name == "CustomRedis":  # built lazily: django-q2's brokers need settings loaded
        globals()[name] = _custom_redis_broker()
        return globals()[name]
    raise AttributeError(name)
