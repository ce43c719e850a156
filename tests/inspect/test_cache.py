"""The dashboard's cache keys and its thread-safe result store (``fusioncore.inspect.cache``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest

from fusioncore.inspect.cache import (ResultCache, attributions_key, cohort_key, cohort_trust_key, explanation_key,
                                      file_identity, sample_trust_key, slide_run_key)


def test_keys_normalise_what_widgets_hand_over():
    # numpy bools and ints from a widget or a data row give the same key as plain ones
    import numpy as np

    pattern = np.array([True, False])
    assert explanation_key("m", "d", np.int64(3), pattern) == ("m", "d", 3, (True, False))
    assert attributions_key("m", "d", 3, [1, 0], "ig") == ("m", "d", 3, (True, False), "ig")
    assert sample_trust_key("m", "d", 3, pattern, None) == ("trust-sample", "m", "d", 3, (True, False), None)
    assert cohort_trust_key("m", "d", np.int64(16)) == ("trust-cohort", "m", "d", 16)
    assert cohort_key("cohort", "m", "d") != cohort_key("robustness", "m", "d")


def test_keys_of_different_things_differ():
    keys = {explanation_key("m", "d", 0, (True,)), explanation_key("m", "d", 0, (False,)),
            explanation_key("m", "d", 1, (True,)), explanation_key("m2", "d", 0, (True,)),
            attributions_key("m", "d", 0, (True,), "ig"), attributions_key("m", "d", 0, (True,), "saliency")}
    assert len(keys) == 6


@dataclass(frozen=True)
class _Options:
    mpp: float | None
    top_k: int


def test_slide_run_key_changes_with_slide_model_and_every_option():
    base = slide_run_key("abc", "model", _Options(0.5, 10))
    assert base == slide_run_key("abc", "model", _Options(0.5, 10)) and len(base) == 20
    others = {slide_run_key("abd", "model", _Options(0.5, 10)), slide_run_key("abc", "other", _Options(0.5, 10)),
              slide_run_key("abc", "model", _Options(None, 10)), slide_run_key("abc", "model", _Options(0.5, 11))}
    assert base not in others and len(others) == 4


def test_file_identity_changes_when_the_file_does(tmp_path):
    path = tmp_path / "slide.tif"
    path.write_bytes(b"one")
    first = file_identity(path)
    assert file_identity(path) == first
    path.write_bytes(b"three")  # another size
    assert file_identity(path) != first


def test_result_cache_is_least_recently_used_and_bounded():
    cache = ResultCache(max_entries=2)
    calls = []
    get = lambda k: cache.get_or_compute(k, lambda: calls.append(k) or k.upper())  # noqa: E731
    assert get("a") == "A" and get("b") == "B"
    assert get("a") == "A"  # a hit: "a" becomes the most recent
    get("c")  # evicts "b", the least recently used
    assert "a" in cache and "c" in cache and "b" not in cache and len(cache) == 2
    assert calls == ["a", "b", "c"]
    with pytest.raises(ValueError, match="max_entries must be >= 1"):
        ResultCache(0)


def test_a_failed_computation_stores_nothing():
    cache = ResultCache(max_entries=4)

    def fail():
        raise ValueError("the cohort has no labels")

    with pytest.raises(ValueError, match="no labels"):
        cache.get_or_compute("k", fail)
    assert "k" not in cache
    assert cache.get_or_compute("k", lambda: 1) == 1


def test_concurrent_sessions_asking_for_one_key_compute_it_once():
    cache = ResultCache(max_entries=4)
    calls = []
    start = threading.Barrier(8)

    def slow():
        calls.append(1)
        time.sleep(0.05)  # long enough that every thread asks while it runs
        return object()

    results = [None] * 8

    def session(i):
        start.wait()
        results[i] = cache.get_or_compute("cohort", slow)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(r is results[0] for r in results)


def test_many_threads_hammering_a_small_cache_keep_it_consistent():
    cache = ResultCache(max_entries=3)
    errors = []
    start = threading.Barrier(8)

    def session(seed):
        start.wait()
        try:
            for i in range(400):
                key = (seed * 7 + i) % 11
                assert cache.get_or_compute(key, lambda k=key: k * 10) == key * 10
        except Exception as err:  # noqa: BLE001 -- collected and reported below
            errors.append(err)

    threads = [threading.Thread(target=session, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(cache) == 3
    assert not cache._computing  # no key left marked as being computed


def test_a_slow_key_does_not_block_another():
    cache = ResultCache(max_entries=4)
    release = threading.Event()
    slow = threading.Thread(target=lambda: cache.get_or_compute("slow", lambda: release.wait(5)))
    slow.start()
    time.sleep(0.02)
    t0 = time.perf_counter()
    assert cache.get_or_compute("fast", lambda: 1) == 1
    assert time.perf_counter() - t0 < 1.0
    release.set()
    slow.join()


def test_model_and_data_keys_name_their_source():
    from fusioncore.inspect.cache import (DEMO, FOLDER, UPLOAD, checkpoint_model_key, data_source, demo_data_key,
                                          folder_data_key, scope_key, upload_key, uploads_digest)

    assert checkpoint_model_key("/ck/mca", "ab12") == "/ck/mca:ab12"
    assert data_source(demo_data_key("/assets/a")) == DEMO
    assert demo_data_key("/assets/a") != demo_data_key("/assets/b")  # two assets folders, two cohorts
    assert data_source(folder_data_key("mogonet:/d", "v1")) == FOLDER
    assert folder_data_key("mogonet:/d", "v1") != folder_data_key("mogonet:/d", "v2")
    assert data_source(upload_key("ff")) == UPLOAD
    files = [("mrna.csv", b"id,a\n1,2\n"), ("labels.csv", b"id,y\n1,0\n")]
    assert uploads_digest(files) == uploads_digest(list(files))
    assert uploads_digest(files) != uploads_digest([("methylation.csv", files[0][1]), files[1]])  # names count
    assert uploads_digest([("ab", b"c")]) != uploads_digest([("a", b"bc")])  # name and content kept apart
    assert len(scope_key("m", "d")) == 12 and scope_key("m", "d") != scope_key("m", "d2")
    assert scope_key("m", "d") != scope_key("m\0d", "")
