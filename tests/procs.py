"""Real processes for tests: throwaway redis-server, qcluster and probe server.

Everything here talks to real servers and real subprocesses; waits poll a
condition with a deadline instead of sleeping.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SETTINGS = "rsr_tasks.demo.settings"


def terminate(proc: subprocess.Popen | None, grace: float = 5) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds: a server that ignores TERM
    must not outlive the test."""
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.1,
             what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # keep polling; report the last error on timeout
            last_exc = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


class RedisServer:
    """A private redis-server on a free port; never the shared one on 6379."""

    def __init__(self, workdir: Path, port: int | None = None,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.extra_args = extra_args
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
             "--logfile", str(self.workdir / "redis.log"), *self.extra_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis

        password = None
        if "--requirepass" in self.extra_args:
            password = self.extra_args[self.extra_args.index("--requirepass") + 1]
        client = redis.Redis(port=self.port, socket_timeout=0.5, password=password)
        wait_for(client.ping, 10, 0.02, "redis-server to answer PING")
        client.close()
        return self

    def stop(self) -> None:
        terminate(self.proc)

    def client(self):
        import redis

        return redis.Redis(port=self.port, socket_timeout=2)


class RedisSentinel:
    """A private redis-sentinel (Debian package ``redis-sentinel``) on a free port,
    watching one primary as ``service``. Short ``down-after`` and failover timeouts,
    so a killed primary is replaced within a few seconds."""

    def __init__(self, workdir: Path, service: str, primary_port: int, quorum: int = 2,
                 down_after_ms: int = 1000, failover_timeout_ms: int = 3000) -> None:
        self.workdir = workdir
        self.service = service
        self.primary_port = primary_port
        self.quorum = quorum
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> RedisSentinel:
        binary = shutil.which("redis-sentinel") or "/usr/bin/redis-sentinel"
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "sentinel.conf"  # rewritten by the sentinel as it learns
        s = self.service
        conf.write_text("\n".join([
            f"port {self.port}", "bind 127.0.0.1", "daemonize no", f"dir {self.workdir}",
            f"logfile {self.workdir / 'sentinel.log'}",
            f"sentinel monitor {s} 127.0.0.1 {self.primary_port} {self.quorum}",
            f"sentinel down-after-milliseconds {s} {self.down_after_ms}",
            f"sentinel failover-timeout {s} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {s} 1", ""]))
        self.proc = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(self.client().ping, 10, 0.02, "redis-sentinel to answer PING")
        return self

    def client(self):
        import redis

        return redis.Redis(port=self.port, socket_timeout=1, decode_responses=True)

    def primary_port_now(self) -> int:
        """The port of the primary this sentinel names now."""
        _host, port = self.client().execute_command("SENTINEL", "get-master-addr-by-name",
                                                    self.service)
        return int(port)

    def knows(self, replicas: int, sentinels: int) -> bool:
        """This sentinel has discovered the replicas and the other sentinels."""
        c = self.client()
        return (len(c.execute_command("SENTINEL", "replicas", self.service)) >= replicas
                and len(c.execute_command("SENTINEL", "sentinels", self.service)) >= sentinels)

    def stop(self) -> None:
        terminate(self.proc)

    def log(self) -> str:
        path = self.workdir / "sentinel.log"
        return path.read_text(errors="replace") if path.exists() else ""


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_Q_DATA_DIR")}
    env.update(DJANGO_SETTINGS_MODULE=SETTINGS, PYTHONUNBUFFERED="1",
               PYTHONPATH=str(ROOT))
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, timeout=timeout,
                          capture_output=True, text=True, check=True)


def migrate(env: dict[str, str]) -> None:
    """Create the schema and the cache table(s) for a broker set-up."""
    manage(env, "migrate", "--noinput", "-v", "0")
    code = ("import django; django.setup(); from django.conf import settings; "
            "from django.core.management import call_command; "
            "[call_command('createcachetable', database=a, verbosity=0) "
            "for a in settings.DATABASES]")
    subprocess.run([PYTHON, "-c", code], cwd=ROOT, env=env, check=True, timeout=60,
                   capture_output=True)


class Proc:
    """A subprocess with its output in a log file, stopped politely then firmly."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path,
                 hostname: str | None = None) -> None:
        if hostname:
            # A separate UTS namespace gives this process tree its own host name
            # (as root), which is how two "nodes" share one machine in tests.
            args = ["unshare", "--uts", "sh", "-c",
                    'hostname "$0" && exec "$@"', hostname, *args]
        self.log_path = log
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)

    def signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.proc.wait(5)
        self.signal_group(signal.SIGKILL)  # orphans (e.g. workers of a killed sentinel)
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


class Exporter(Proc):
    """``python -m exporter serve`` on a free loopback port."""

    def __init__(self, env: dict[str, str], log: Path, *flags: str,
                 hostname: str | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        args = [PYTHON, "-m", "exporter", "serve", "--listen-address",
                f"127.0.0.1:{self.port}", *flags]
        super().__init__(args, env, log, hostname)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 5.0,
            headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
        """(status, body, headers) of one request on a new connection, whatever the status."""
        resp = requests.get(self.url + path, headers=headers, timeout=timeout,
                            allow_redirects=False)
        return resp.status_code, resp.content.decode(), dict(resp.headers)

    def wait_ready_to_serve(self, timeout: float = 30) -> None:
        def answering():
            if not self.alive():
                raise AssertionError(f"exporter exited:\n{self.output()}")
            return self.get("/livez", timeout=1)[0] in (200, 503)

        wait_for(answering, timeout, 0.05, "exporter to answer /livez")

    def metrics_text(self) -> str:
        status, body, _ = self.get("/metrics")
        assert status == 200, body
        return body

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """All samples of /metrics keyed by (name, sorted label pairs)."""
        out = {}
        for fam in text_string_to_metric_families(self.metrics_text()):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def value(self, name: str, **labels: str) -> float | None:
        """The one sample ``name`` whose labels include ``labels`` (None if absent)."""
        want = set(labels.items())
        found = [v for (n, ls), v in self.samples().items() if n == name and want <= set(ls)]
        assert len(found) <= 1, f"{name}{labels} matched {len(found)} samples"
        return found[0] if found else None


def qcluster(env: dict[str, str], log: Path, hostname: str | None = None) -> Proc:
    return Proc([PYTHON, "manage.py", "qcluster"], env, log, hostname)


class PostgresServer:
    """A private PostgreSQL server (initdb in a throwaway directory, a free port).

    For faults that need the *server* to go away (stop / restart), which the
    shared PostgreSQL on 5432 must never do. initdb and postgres refuse to run
    as root, so they run as the ``postgres`` OS user in a directory owned by it
    (under /tmp: pytest's tmp dirs are root-only and unix socket paths are
    short). Trust auth on 127.0.0.1 only, fsync off: a test server, nothing kept.
    ``stop()`` is ``pg_ctl stop -m fast`` (every client connection is dropped);
    ``start()`` again reuses the data directory and the port.
    """

    def __init__(self, port: int | None = None, dbname: str = "dqe") -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
                      key=lambda p: int(p.parent.parent.name)
                      if p.parent.parent.name.isdigit() else 0)
        if not bins:
            raise RuntimeError("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin "
                               "(Debian package postgresql)")
        self.bindir = bins[-1].parent
        self.port = port or free_port()
        self.dbname = dbname
        self.dir = Path(tempfile.mkdtemp(prefix="dqe-pg-"))
        self.data = self.dir / "data"
        shutil.chown(self.dir, "postgres", "postgres")
        self.initdb_seconds: float | None = None
        self.initialised = False

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.dbname}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True,
                       timeout=timeout, capture_output=True, cwd=self.dir)

    def start(self) -> PostgresServer:
        """initdb (first time only), start, wait until it accepts connections."""
        if not self.initialised:
            t0 = time.monotonic()
            self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                      "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
            self.initdb_seconds = time.monotonic() - t0
        opts = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                f"-c unix_socket_directories={self.dir} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                  str(self.dir / "postgres.log"), "-w", "-t", "30", "-o", opts, "start")
        if not self.initialised:
            import psycopg

            admin = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
            with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f'CREATE DATABASE "{self.dbname}"')
            self.initialised = True
        return self

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m mode``; waits until the server is gone. No-op if stopped."""
        if self.running():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode,
                      "-w", "-t", "30", "stop")

    def log(self) -> str:
        path = self.dir / "postgres.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def remove(self) -> None:
        """Stop (immediately) and delete the data directory."""
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def run_py(env: dict[str, str], code: str) -> str:
    """Run ``code`` with Django set up under ``env`` (e.g. to create rows); its stdout."""
    done = subprocess.run([PYTHON, "-c", "import django; django.setup()\n" + code], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def enqueue(env: dict[str, str], func: str, args_list) -> None:
    """``async_task(func, *args)`` for each args tuple, from a child process."""
    run_py(env, "from django_q.tasks import async_task\n"
                f"for args in {list(args_list)!r}: async_task({func!r}, *args)\n")
