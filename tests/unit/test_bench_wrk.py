"""The benchmark's wrk report parser, on reports wrk 4 printed (kept verbatim, trailing
spaces included)."""

from __future__ import annotations

import pytest

from bench.stack import parse_wrk

#: A 1.2 s handler: wrk prints seconds as "1.31s " (one-letter unit padded to two).
IN_SECONDS = (
    'Running 4s test @ http://127.0.0.1:18765/\n'
    '  1 threads and 2 connections\n'
    '  Thread Stats   Avg      Stdev     Max   +/- Stdev\n'
    '    Latency     1.29s   100.24ms   1.47s    83.33%\n'
    '    Req/Sec     3.00      4.24    10.00     80.00%\n'
    '  Latency Distribution\n'
    '     50%    1.31s \n'
    '     75%    1.32s \n'
    '     90%    1.47s \n'
    '     99%    1.47s \n'
    '  6 requests in 4.06s, 678.00B read\n'
    'Requests/sec:      1.48\n'
    'Transfer/sec:     166.94B\n'
)
#: A fast handler: microseconds and milliseconds.
IN_MILLISECONDS = (
    'Running 2s test @ http://127.0.0.1:18766/worker.sh\n'
    '  1 threads and 1 connections\n'
    '  Thread Stats   Avg      Stdev     Max   +/- Stdev\n'
    '    Latency     1.83ms    4.73ms  53.05ms   94.60%\n'
    '    Req/Sec     1.37k   468.52     2.83k    80.00%\n'
    '  Latency Distribution\n'
    '     50%  363.00us\n'
    '     75%    1.56ms\n'
    '     90%    4.01ms\n'
    '     99%   25.93ms\n'
    '  2752 requests in 2.02s, 12.63MB read\n'
    'Requests/sec:   1363.56\n'
    'Transfer/sec:      6.26MB\n'
)


def test_values_in_seconds_with_wrk_padding():
    got = parse_wrk(IN_SECONDS)
    assert got["p50"] == pytest.approx(1.31) and got["p99"] == pytest.approx(1.47)
    assert got["rps"] == pytest.approx(1.48) and got["non2xx"] == 0 and got["errors"] == 0


def test_values_in_micro_and_milliseconds():
    got = parse_wrk(IN_MILLISECONDS)
    assert got["p50"] == pytest.approx(363e-6) and got["p99"] == pytest.approx(25.93e-3)
    assert got["rps"] == pytest.approx(1363.56)
