"""Task functions the benchmark enqueues on a real cluster."""

import time


def sleep_10ms() -> None:
    """The 10 ms task the instrumentation overhead is measured on."""
    time.sleep(0.010)
