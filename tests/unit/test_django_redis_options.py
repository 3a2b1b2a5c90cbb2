"""django-redis OPTIONS bounded for the exporter's reads and the unique-task locks: every
socket operation within the backend timeout, for servers and sentinels; no retries."""

from __future__ import annotations

from djq_contract.redisconn import bounded_django_redis, django_redis_url


def test_timeouts_capped_and_filled_in_no_retries_user_options_kept():
    given = {"SOCKET_TIMEOUT": 10, "PASSWORD": "pw",
             "CONNECTION_POOL_KWARGS": {"max_connections": 5}}
    out = bounded_django_redis(given, 1.5)
    assert out["SOCKET_TIMEOUT"] == 1.5 and out["SOCKET_CONNECT_TIMEOUT"] == 1.5
    pool = out["CONNECTION_POOL_KWARGS"]
    assert pool["max_connections"] == 5 and pool["health_check_interval"] == 0
    assert pool["retry"].get_retries() == 0
    assert "socket_timeout" not in pool, "the SOCKET_* options above stay in charge"
    assert out["PASSWORD"] == "pw" and "SENTINEL_KWARGS" not in out
    assert given == {"SOCKET_TIMEOUT": 10, "PASSWORD": "pw",
                     "CONNECTION_POOL_KWARGS": {"max_connections": 5}}, "input untouched"
    assert bounded_django_redis({"SOCKET_TIMEOUT": 0.2}, 1.5)["SOCKET_TIMEOUT"] == 0.2


def test_sentinels_are_bounded_too():
    out = bounded_django_redis({"SENTINELS": [("h", 26379)]}, 0.5)
    assert out["SENTINEL_KWARGS"]["socket_timeout"] == 0.5
    assert out["SENTINEL_KWARGS"]["retry"].get_retries() == 0
    auth = bounded_django_redis({"SENTINELS": [("h", 26379)],
                                 "SENTINEL_KWARGS": {"password": "s", "socket_timeout": 9}}, 0.5)
    assert auth["SENTINEL_KWARGS"]["password"] == "s"
    assert auth["SENTINEL_KWARGS"]["socket_timeout"] == 0.5


def test_primary_url_is_the_first_location():
    assert django_redis_url({"LOCATION": "redis://a/0,redis://b/0"}) == "redis://a/0"
    assert django_redis_url({"LOCATION": ["redis://svc/1", "redis://r/1"]}) == "redis://svc/1"
