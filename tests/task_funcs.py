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
