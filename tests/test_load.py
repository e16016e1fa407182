"""16 concurrent gradio_client sessions x 2 analyses while 4 more clients send hostile inputs (the decoder bombs
among them): no good analysis fails, results identical to sequential ones, every hostile input refused, memory
bounded. The benchmark (bench/load_bench.py, 16 x 5 by default) prints the timings, never asserted here."""
import pytest

from load_bench import run_load
from server import running_app

pytestmark = pytest.mark.slow  # real servers, training or subprocesses: `make test-fast` skips them


@pytest.mark.long
def test_concurrent_sessions():
    with running_app(process=True) as (url, proc, log):  # its memory is read: a process of its own
        result = run_load(url, proc.pid, clients=16, rounds=2, bad_clients=4)
    print(result)
    assert result["failures"] == 0, result["first_failure"]
    assert result["mismatches"] == 0
    assert result["analyses"] == 32
    assert result["bad_inputs_accepted"] == 0 and result["bad_inputs_refused"] >= 4
    assert result["server_peak_rss_mb"] < 2048  # bounded (1350 MB measured): the queue runs 2 analyses at a time
