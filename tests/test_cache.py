"""Score caches: the in-memory LRU and the Redis backend against a real Redis server."""

from __future__ import annotations

import logging
import time

import pytest
import redis

from srm_agent.cache import MAX_PLAUSIBLE_LOGIT, InMemoryScoreCache, RedisScoreCache, score_key
from srm_agent.node import make_srm_node

STATE = "the red block is on the table; goal: red on blue"


def test_score_key_separates_its_parts():
    assert score_key("f", "ab", "c") != score_key("f", "a", "bc")
    assert score_key("f1", "s", "a") != score_key("f2", "s", "a")
    assert len(score_key("f", "s", "a")) == 64


def test_in_memory_cache_evicts_the_least_recently_used():
    cache = InMemoryScoreCache(maxsize=2)
    cache.set_many({"a": 1.0, "b": 2.0})
    assert cache.get_many(["a"]) == [1.0]  # "a" is now the most recent
    cache.set_many({"c": 3.0})
    assert cache.get_many(["a", "b", "c"]) == [1.0, None, 3.0]
    assert len(cache) == 2


def test_redis_cache_round_trips_plain_floats(redis_url, redis_namespace):
    cache = RedisScoreCache(redis_url, namespace=redis_namespace)
    cache.set_many({"k1": -1.25, "k2": 3.0e-7})
    assert cache.get_many(["k1", "missing", "k2"]) == [-1.25, None, 3.0e-7]
    raw = redis.Redis.from_url(redis_url).get(f"{redis_namespace}:k1")
    assert raw == b"-1.25"  # a plain string, readable by any client; never a pickle


def test_redis_cache_ignores_foreign_values(redis_url, redis_namespace):
    redis.Redis.from_url(redis_url).set(f"{redis_namespace}:bad", "\x80\x04not-a-float")
    assert RedisScoreCache(redis_url, namespace=redis_namespace).get_many(["bad"]) == [None]


# Values set_many never writes: undecodable bytes; floats a real SRM logit cannot be; strings float() accepts.
UNDECODABLE = [b"\xff\xfe", b"\x80\x04\x95", b"-1.5\xff"]
IMPLAUSIBLE = [b"1e308", b"-1e308", b"1_000", b"nan", b"-inf", b" 2.5", b"2.5\n",
               repr(MAX_PLAUSIBLE_LOGIT * 1.001).encode()]


@pytest.mark.parametrize("corrupt", [UNDECODABLE, IMPLAUSIBLE], ids=["undecodable", "implausible"])
def test_corrupt_cached_values_are_misses_rescored_and_logged_once(redis_url, redis_namespace, tiny_srm, caplog,
                                                                   corrupt):
    client = redis.Redis.from_url(redis_url)
    candidates = [{"text": f"pick up block {i}", "logprob": -1.0 - i, "num_tokens": 4} for i in range(len(corrupt))]
    texts = [c["text"] for c in candidates]
    keys = [score_key(tiny_srm.fingerprint, STATE, t) for t in texts]
    cache = RedisScoreCache(redis_url, namespace=redis_namespace)
    node = make_srm_node(tiny_srm, cache=cache, seed=0)

    for round_ in range(2):
        client.mset({f"{redis_namespace}:{k}": v for k, v in zip(keys, corrupt)})
        with caplog.at_level(logging.WARNING, logger="srm_agent.cache"):
            verdict = node({"state": STATE, "candidates": candidates})["verdict"]
        assert not any(d["cached"] for d in verdict["decisions"]), round_
        assert [d["srm_logit"] for d in verdict["decisions"]] == pytest.approx(tiny_srm.score(STATE, texts), abs=1e-5)
    assert sum("not scores an SRM can produce" in r.message for r in caplog.records) == 1
    # The misses were rescored and overwritten with plain floats, so the next call reads them.
    assert [float(v) for v in client.mget([f"{redis_namespace}:{k}" for k in keys])] == pytest.approx(
        tiny_srm.score(STATE, texts), abs=1e-5)
    assert all(d["cached"] for d in node({"state": STATE, "candidates": candidates})["verdict"]["decisions"])


def test_plausible_values_at_the_bound_are_hits(redis_url, redis_namespace):
    client = redis.Redis.from_url(redis_url)
    client.mset({f"{redis_namespace}:a": repr(MAX_PLAUSIBLE_LOGIT).encode(), f"{redis_namespace}:b": b"-0.5",
                 f"{redis_namespace}:c": b"3e-07"})
    assert RedisScoreCache(redis_url, namespace=redis_namespace).get_many(["a", "b", "c"]) == [
        MAX_PLAUSIBLE_LOGIT, -0.5, 3e-07]


def test_redis_cache_ttl_expires_entries(redis_url, redis_namespace):
    cache = RedisScoreCache(redis_url, namespace=redis_namespace, ttl=60)
    cache.set_many({"k": 1.0, "j": 2.0})
    client = redis.Redis.from_url(redis_url)
    assert 0 < client.ttl(f"{redis_namespace}:k") <= 60
    assert 0 < client.ttl(f"{redis_namespace}:j") <= 60


def _command_calls(client: redis.Redis) -> dict[str, int]:
    return {name: stats["calls"] for name, stats in client.info("commandstats").items()}


def test_a_k16_node_call_costs_one_round_trip_each_way(redis_url, redis_namespace, tiny_srm):
    client = redis.Redis.from_url(redis_url)
    cache = RedisScoreCache(redis_url, namespace=redis_namespace)
    node = make_srm_node(tiny_srm, cache=cache, seed=0)
    candidates = [{"text": f"move block {i}", "logprob": -1.0 - i / 10, "num_tokens": 3} for i in range(16)]
    cache.client.ping()  # open the connection first: its handshake is not part of a node call

    before = _command_calls(client)
    first = node({"state": STATE, "candidates": candidates})["verdict"]
    after = _command_calls(client)
    # INFO itself is counted once between the snapshots.
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    assert delta == {"cmdstat_mget": 1, "cmdstat_mset": 1, "cmdstat_info": 1}
    assert not any(d["cached"] for d in first["decisions"])

    before = _command_calls(client)
    second = node({"state": STATE, "candidates": candidates})["verdict"]
    after = _command_calls(client)
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    assert delta == {"cmdstat_mget": 1, "cmdstat_info": 1}  # all hits: nothing scored, nothing written
    assert all(d["cached"] for d in second["decisions"])
    assert [d["srm_logit"] for d in second["decisions"]] == [d["srm_logit"] for d in first["decisions"]]


def test_scores_are_shared_between_cache_instances(redis_url, redis_namespace, tiny_srm):
    candidates = [{"text": "pick up the red block", "logprob": -2.0, "num_tokens": 5}]
    make_srm_node(tiny_srm, cache=RedisScoreCache(redis_url, namespace=redis_namespace))(
        {"state": STATE, "candidates": candidates})
    other_process_view = RedisScoreCache(redis_url, namespace=redis_namespace)
    verdict = make_srm_node(tiny_srm, cache=other_process_view)({"state": STATE, "candidates": candidates})
    assert verdict["verdict"]["decisions"][0]["cached"]


def test_search_goes_on_when_redis_is_unreachable(tiny_srm, caplog):
    cache = RedisScoreCache("redis://127.0.0.1:1/0", socket_timeout=0.2, retry_after=3600)
    node = make_srm_node(tiny_srm, cache=cache, seed=0)
    candidates = [{"text": "pick up the red block", "logprob": -2.0, "num_tokens": 5},
                  {"text": "stack the red block", "logprob": -3.0, "num_tokens": 4}]
    with caplog.at_level(logging.WARNING, logger="srm_agent.cache"):
        first = node({"state": STATE, "candidates": candidates})["verdict"]
        second = node({"state": STATE, "candidates": candidates})["verdict"]
    assert len(first["decisions"]) == 2 and not cache.available
    assert all(d["cached"] for d in second["decisions"])  # served by the in-memory fallback
    assert sum("unavailable" in r.message for r in caplog.records) == 1


def test_redis_outage_mid_run_falls_back_then_reconnects(redis_url, redis_namespace, caplog):
    cache = RedisScoreCache(redis_url, namespace=redis_namespace, socket_timeout=0.3, retry_after=0.5)
    cache.set_many({"before": 1.0})
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # the server stops answering for 1.5 s
    try:
        with caplog.at_level(logging.WARNING, logger="srm_agent.cache"):
            assert cache.get_many(["before"]) == [1.0]  # from the in-memory copy
            cache.set_many({"during": 2.0})
            assert cache.get_many(["during"]) == [2.0]
        assert not cache.available
        assert sum("unavailable" in r.message for r in caplog.records) == 1
    finally:
        time.sleep(1.6)
    with caplog.at_level(logging.INFO, logger="srm_agent.cache"):
        cache.set_many({"after": 3.0})
    assert cache.available
    assert admin.get(f"{redis_namespace}:after") == b"3.0"
    assert any("reachable again" in r.message for r in caplog.records)


@pytest.mark.parametrize("bad", [0, -5])
def test_invalid_ttl_is_refused(redis_url, bad):
    with pytest.raises(ValueError, match="ttl"):
        RedisScoreCache(redis_url, ttl=bad)
