"""Configuration from flags and environment, validated once: values, precedence and the
one-line errors naming the flag or variable; the exec probe's default URL; one-line
error texts and URL masking. Pure, no I/O."""

from __future__ import annotations

import pytest

from exporter.__main__ import build_parser, default_probe_url
from exporter.config import DEFAULT_PORT, OPTIONS, ConfigError, parse
from exporter.errors import describe, one_line
from exporter.urls import mask_url


def error_of(argv, env=None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(argv, env or {})
    return str(info.value)


def test_defaults_without_flags_or_environment():
    cfg = parse([], {})
    assert (cfg.listen_host, cfg.listen_port) == ("0.0.0.0", 9847)
    assert cfg.django_settings is None and cfg.cluster_name is None
    assert (cfg.stat_grace, cfg.retention, cfg.startup_grace) == (5.0, 900.0, 60.0)
    assert parse([], {"DJANGO_SETTINGS_MODULE": "x.settings"}).django_settings == "x.settings"


def test_every_option_has_an_environment_fallback_named_in_help():
    help_text = " ".join(build_parser()._subparsers._group_actions[0]
                         .choices["serve"].format_help().split())
    for opt in OPTIONS:
        assert opt.env == "DJANGO_Q_EXPORTER_" + opt.name.upper().replace("-", "_")
        assert f"--{opt.name}" in help_text and f"[env {opt.env}]" in help_text


@pytest.mark.parametrize("argv, env, message", [
    (["--stat-grace", "soon"], {}, "--stat-grace: 'soon' is not a number of seconds"),
    ([], {"DJANGO_Q_EXPORTER_STAT_GRACE": "0"},
     "DJANGO_Q_EXPORTER_STAT_GRACE: '0' must be a positive number of seconds"),
    (["--schedule-cap", "1.5"], {}, "--schedule-cap: '1.5' is not an integer"),
    (["--log-level", "chatty"], {}, "--log-level: 'chatty' is not one of DEBUG, INFO"),
    (["--listen-address", "host:"], {}, "--listen-address: port '' is not a number"),
    (["--listen-address", "10.0.0.1:65536"], {}, "--listen-address: port 65536 is outside"),
    ([], {"DJANGO_Q_EXPORTER_LISTEN_ADDRESS": "bad_host:1"},
     "DJANGO_Q_EXPORTER_LISTEN_ADDRESS: 'bad_host' is not an IP address or host name"),
    (["--cluster-name", "  "], {}, "--cluster-name: empty value"),
    (["--health-timeout", "1"], {}, "--health-timeout: 1 must stay under 1 s"),
    ([], {"DJANGO_Q_EXPORTER_HEALTH_TIMEOUT": "1.5"},
     "DJANGO_Q_EXPORTER_HEALTH_TIMEOUT: 1.5 must stay under 1 s"),
    (["--backend-timeout", "6"], {},
     "--scrape-timeout: 5 must be at least the backend timeout (6)"),
])
def test_errors_name_the_flag_or_variable_in_one_line(argv, env, message):
    text = error_of(argv, env)
    assert text.startswith(message), text
    assert "\n" not in text


def test_flag_beats_environment_even_when_the_environment_is_invalid():
    cfg = parse(["--retention", "30"], {"DJANGO_Q_EXPORTER_RETENTION": "never"})
    assert cfg.retention == 30.0


def test_log_level_and_choice_are_case_insensitive():
    assert parse(["--log-level", "debug"], {}).log_level == "DEBUG"
    assert parse(["--auth-probes", "YES"], {}).auth_probes == "yes"


def test_listen_address_wildcard_and_ipv6():
    cfg = parse(["--listen-address", "[::]:9000"], {})
    assert (cfg.listen_host, cfg.listen_port) == ("::", 9000)
    cfg = parse(["--listen-address", "[::1]:9000"], {})
    assert (cfg.listen_host, cfg.listen_port) == ("::1", 9000)


@pytest.mark.parametrize("env, url", [
    ({}, "http://127.0.0.1:9847/healthz"),
    ({"DJANGO_Q_EXPORTER_LISTEN_ADDRESS": "0.0.0.0:9100"}, "http://127.0.0.1:9100/healthz"),
    ({"DJANGO_Q_EXPORTER_LISTEN_ADDRESS": "9101"}, "http://127.0.0.1:9101/healthz"),
    ({"DJANGO_Q_EXPORTER_LISTEN_ADDRESS": "0.0.0.0:9100", "PROBE_PORT": "9200",
      "PROBE_HOST": "10.0.0.2", "PROBE_PATH": "/livez"}, "http://10.0.0.2:9200/livez"),
])
def test_check_default_url_matches_worker_sh(env, url):
    """`python -m exporter check` without a URL probes what k8s/worker.sh probes."""
    assert default_probe_url(env) == url


def test_one_line_errors_and_masking():
    assert one_line("connection failed:\n\tIs the server running?") == \
        "connection failed: Is the server running?"
    assert len(one_line("x" * 500)) == 300
    assert describe(OSError("a\nb")) == "OSError: a b"
    assert mask_url("redis://:pw@h:notaport/0") == "<unparseable url>"
    assert mask_url("rediss://user:pw@h/0") == "rediss://user:***@h/0"


def test_flag_beats_env_beats_default():
    cfg = parse(["--stat-grace", "7"], {"DJANGO_Q_EXPORTER_STAT_GRACE": "9",
                                         "DJANGO_Q_EXPORTER_RETENTION": "60"})
    assert cfg.stat_grace == 7.0 and cfg.retention == 60.0
    assert cfg.listen_port == DEFAULT_PORT and cfg.backend_timeout == 1.0


def test_listen_address_forms():
    assert parse(["--listen-address", "[::1]:9000"], {}).listen_host == "::1"
    assert parse(["--listen-address", ":9001"], {}).listen_host == "0.0.0.0"
    assert parse(["--listen-address", "9002"], {}).listen_port == 9002


@pytest.mark.parametrize("argv", [["--retention", "nan"], ["--retention", "inf"],
                                  ["--max-connections", "0"], ["--listen-address", "a b:1"]])
def test_rejects(argv):
    with pytest.raises(ConfigError):
        parse(argv, {})


def test_expected_hosts_list():
    assert parse(["--expected-hosts", "a, b,,c"], {}).expected_hosts == ("a", "b", "c")


def test_mask_url():
    assert mask_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert mask_url("postgres://u:pw@[::1]:5/db") == "postgres://u:***@[::1]:5/db"
    assert mask_url("redis://h:1/0") == "redis://h:1/0"
