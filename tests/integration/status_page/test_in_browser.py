"""The status page at ``/`` in a real headless Chromium, in front of a real qcluster.

One stack for the module (a private redis-server, a qcluster with two workers,
an exporter, one browser), shared by the tests in file order: the page shows
the cluster up; a unique task's holder frozen with SIGSTOP turns its row stale
within one self-refresh and back after SIGCONT; names built to inject markup
render as text and run nothing; a hidden tab does not reload; and with Redis
gone the page still answers, its sections marked failed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from tests import procs as P
from tests.integration.status_page import browser as B

HOST = socket.gethostname()
REFRESH = 2  # seconds between the page's own reloads in these tests
#: Names that would run script if a page put them into its markup unescaped.
EVIL_TASK = "<img src=x onerror=alert(1)>"
EVIL_SCHEDULE = "<img src=x onerror=alert(1)>"
EVIL_FLAG = '<img src=x onerror="window.__status_page_xss=1">'
#: A page load on this shared, loaded machine: on top of the refresh period.
LOAD_SLACK = 6.0


@pytest.fixture(scope="module")
def stack(tmp_path_factory, sqlite_template):
    import shutil

    work = tmp_path_factory.mktemp("status-page")
    redis = P.RedisServer(work / "redis").start()
    name = f"page{uuid.uuid4().hex[:6]}"
    data = work / "data"
    shutil.copytree(sqlite_template, data)
    env = P.base_env(DJANGO_Q_NAME=name, DJANGO_Q_DATA_DIR=str(data),
                     DJANGO_Q_EXPORTER_POD_STORE=str(work / "pod.sqlite3"),
                     DJANGO_SECRET_KEY="test-secret-key", REDIS_URL=redis.url,
                     Q_WORKERS="2", Q_TIMEOUT="120", Q_RETRY="200")
    P.run_py(env, "from rsr_tasks.unique.decorator import register\n"
                  f"register({EVIL_TASK!r}, 5)\nregister({EVIL_FLAG!r}, 5)\n"
                  "from django_q.models import Schedule\n"
                  "from django.utils import timezone\nimport datetime as dt\n"
                  f"Schedule.objects.create(name={EVIL_SCHEDULE!r}, "
                  "func='tests.task_funcs.quick', args='1', schedule_type=Schedule.HOURLY, "
                  "next_run=timezone.now() + dt.timedelta(hours=1))\n")
    exporter = P.Exporter(env, work / "exporter.log")
    cluster = P.qcluster(env, work / "qcluster.log")
    driver = B.start(work)
    try:
        exporter.wait_ready_to_serve()
        yield {"env": env, "redis": redis, "exporter": exporter, "cluster": cluster,
               "driver": driver, "work": work}
    finally:
        driver.quit()
        cluster.stop()
        exporter.stop()
        redis.stop()


def _no_alert(driver) -> bool:
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


def _csp_violations(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser")
            if "Content Security Policy" in entry["message"]]


def test_page_shows_the_local_cluster_up_with_its_workers(stack):
    driver, exporter = stack["driver"], stack["exporter"]
    driver.get(f"{exporter.url}/?refresh={REFRESH}")
    first = B.page_origin(driver)

    def local_row():
        row = B.row_named(driver, "clusters", stack["env"]["DJANGO_Q_NAME"])
        return row if row and row[2] == "up" and row[4] == "2" else None

    # The page reloads itself until the cluster is up: no navigation by the test.
    row = P.wait_for(local_row, 60, 0.2, what="the local cluster up with 2 workers")
    assert row[1].startswith(HOST), row
    assert row[3] in ("idle", "working"), row
    P.wait_for(lambda: driver.find_element(By.ID, "verdict").text.startswith("READY"),
               30, 0.2, what="the verdict READY")
    P.wait_for(lambda: B.page_origin(driver) != first, REFRESH + LOAD_SLACK, 0.1,
               what="the page to reload itself")
    checks = B.table_rows(driver, "checks")
    assert {r[0] for r in checks} >= {"stats", "broker", "cluster_seen", "workers"}
    assert all(r[1] == "pass" for r in checks), checks
    assert _csp_violations(driver) == []


def test_functions_of_this_pod_with_rates_and_failures(stack):
    driver, env = stack["driver"], stack["env"]
    P.enqueue(env, "tests.task_funcs.quick", [(i,) for i in range(6)])
    P.enqueue(env, "tests.task_funcs.boom", [(1,), (2,)])
    driver.get(f"{stack['exporter'].url}/?refresh={REFRESH}")

    def done():
        rows = {r[0]: r for r in B.table_rows(driver, "functions")}
        quick, boom = rows.get("tests.task_funcs.quick"), rows.get("tests.task_funcs.boom")
        return (quick, boom) if quick and boom and quick[2] == "6" and boom[3] == "2" else None

    quick, boom = P.wait_for(done, 60, 0.2, what="both functions counted on the page")
    # function, rate, finished, failed, failure ratio, p50, p95
    assert quick[3] == "0" and quick[4] == "0 %", quick
    assert boom[2] == "2" and boom[4] == "100 %", boom
    assert quick[5].endswith(" ms") and quick[6].endswith(" ms"), quick  # 50 ms naps
    # A rate needs a reading from an earlier load: the page reloads itself, then has one.
    P.wait_for(lambda: B.row_named(driver, "functions", "tests.task_funcs.quick")[1]
               .endswith("/min"), REFRESH + LOAD_SLACK, 0.2, what="a rate")


def test_frozen_holder_turns_stale_within_one_refresh_and_back(stack):
    driver, env, redis = stack["driver"], stack["env"], stack["redis"]
    flag = f"release-{uuid.uuid4().hex[:8]}"
    P.enqueue(env, "tests.unique_jobs.hold_until", [(flag,)])
    driver.get(f"{stack['exporter'].url}/?refresh={REFRESH}")

    def running():
        row = B.row_named(driver, "unique-tasks", "dq-page-holder")
        return row if row and row[1] == "running" else None

    row = P.wait_for(running, 60, 0.2, what="dq-page-holder running on the page")
    host, _, pid = row[2].rpartition(" pid ")
    assert host == HOST and pid.isdigit(), row
    holder = int(pid)
    os.kill(holder, signal.SIGSTOP)
    try:
        client = redis.client()
        prefix = f"django_q_exporter:{env['DJANGO_Q_NAME']}:unique:dq-page-holder"
        record = json.loads(client.get(f"{prefix}:state"))
        assert record["pid"] == holder
        secs, micros = client.time()
        # The heartbeat cannot move while the holder is stopped: stale from this moment.
        stale_in = max(0.0, record["beat"] + record["expiry"] - (secs + micros / 1e6))
        stale_at = time.monotonic() + stale_in
        origin = B.page_origin(driver)

        def stale():
            row = B.row_named(driver, "unique-tasks", "dq-page-holder")
            return row if row and row[1] == "stale" else None

        row = P.wait_for(stale, stale_in + REFRESH + LOAD_SLACK, 0.1,
                         what="the frozen holder's row stale")
        shown = time.monotonic()
        assert shown - stale_at <= REFRESH + LOAD_SLACK, "not within one refresh"
        assert B.page_origin(driver) != origin, "the row changed without a reload?"
        assert row[2] == f"{HOST} pid {holder}"
        assert driver.find_element(By.ID, "summary").text.count("1 stale") == 1
        B.full_page_screenshot(driver, stack["work"] / "status-page-stale.png")
        client.set(flag, "1")
    finally:
        os.kill(holder, signal.SIGCONT)

    def back():
        row = B.row_named(driver, "unique-tasks", "dq-page-holder")
        return row if row and row[1] == "idle" else None

    row = P.wait_for(back, REFRESH + LOAD_SLACK + 5, 0.1, what="the row back from stale")
    assert row[2] == "—" and row[6].startswith("success"), row
    shot = B.full_page_screenshot(driver, stack["work"] / "status-page.png")
    print(f"screenshot: {shot}")


def test_names_that_carry_markup_render_as_text_and_run_nothing(stack):
    driver = stack["driver"]
    driver.get(f"{stack['exporter'].url}/?refresh=0")
    assert B.row_named(driver, "unique-tasks", EVIL_TASK) is not None
    assert B.row_named(driver, "unique-tasks", EVIL_FLAG) is not None
    assert B.row_named(driver, "schedules", EVIL_SCHEDULE) is not None
    assert driver.find_elements(By.TAG_NAME, "img") == []
    assert driver.execute_script("return typeof window.__status_page_xss") == "undefined"
    assert _no_alert(driver)
    # The JSON form carries the names as they are.
    status, body, headers = stack["exporter"].get("/status.json")
    assert status == 200 and headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert EVIL_TASK in {t["name"] for t in doc["unique_tasks"]["rows"]}
    assert EVIL_SCHEDULE in {s["name"] for s in doc["schedules"]["rows"]}


def test_policy_headers_and_bad_refresh(stack):
    exporter = stack["exporter"]
    status, _, headers = exporter.get("/")
    csp = headers["Content-Security-Policy"]
    assert status == 200 and csp.startswith("default-src 'none'")
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    status, body, _ = exporter.get("/?refresh=soon")
    assert status == 400 and body.startswith("refresh must be")


def _set_hidden(driver, hidden: bool) -> None:
    """What the browser does when the tab goes to the background or comes back."""
    driver.execute_script(
        "const hidden = arguments[0];"
        "Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});"
        "document.dispatchEvent(new Event('visibilitychange'));", hidden)


def test_a_hidden_tab_does_not_reload_until_shown_again(stack):
    driver = stack["driver"]
    driver.get(f"{stack['exporter'].url}/?refresh={REFRESH}")
    origin = B.page_origin(driver)
    _set_hidden(driver, True)
    time.sleep(2 * REFRESH + 1)  # the precondition itself: two periods in the background
    assert B.page_origin(driver) == origin, "a hidden tab reloaded"
    _set_hidden(driver, False)
    P.wait_for(lambda: B.page_origin(driver) != origin, LOAD_SLACK, 0.1,
               what="the reload once shown, the period being over")


def test_with_redis_gone_the_page_answers_with_failed_sections(stack):
    """Last in the module: it stops the stack's Redis (the qcluster first, which
    otherwise hangs on its shutdown writes)."""
    stack["cluster"].stop()
    stack["redis"].stop()
    driver, exporter = stack["driver"], stack["exporter"]
    started = time.monotonic()
    driver.get(f"{exporter.url}/?refresh=0")
    took = time.monotonic() - started
    text = driver.find_element(By.TAG_NAME, "body").text
    assert took < 5 + LOAD_SLACK, (took, text)  # the scrape budget, plus a load
    for section in ("clusters", "queues", "unique-tasks"):
        errors = driver.find_elements(By.ID, f"{section}-error")
        assert errors and errors[0].text.startswith("not read: "), (section, text)
    assert "Traceback" not in driver.page_source

    def not_ready():
        # The verdict is the probes' observation, which /readyz may still answer from
        # memory for up to a second (exporter.probe): reload until it is fresh.
        driver.get(f"{exporter.url}/?refresh=0")
        return driver.find_element(By.ID, "verdict").text.startswith("NOT READY")

    P.wait_for(not_ready, 10, 0.2, what="the verdict NOT READY")
    failing = {r[0] for r in B.table_rows(driver, "checks") if r[1] == "FAIL"}
    assert "broker" in failing, failing
