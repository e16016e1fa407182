"""The real app over HTTP with gradio_client: same JSON as the CLI; a bad file is an error and the next call works."""
import json

import pytest
from gradio_client import Client, handle_file

from mrnet.sets.samples import BY_KEY, sample_file

from helpers import event_messages, mrnet_cli, run_async
from server import running_app

pytestmark = pytest.mark.slow  # real servers, training or subprocesses: `make test-fast` skips them


@pytest.fixture(scope="module")
def app_url():
    with running_app() as (url, proc, log):
        yield url


def cli_report(*paths):
    run = mrnet_cli("predict", *paths)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_sample_report_equals_cli(app_url):
    client = Client(app_url, verbose=False)
    path = sample_file(BY_KEY["phantom-acl"])
    report = client.predict([handle_file(str(path))], api_name="/analyze")
    expected = cli_report(path)
    assert report["tasks"] == expected["tasks"]
    assert report["weights"] == expected["weights"]
    assert "not for diagnosis" in report["disclaimer"].lower()


def test_bad_file_is_an_error_then_a_good_call_works(app_url, tmp_path):
    client = Client(app_url, verbose=False)
    bad = tmp_path / "axial.npy"
    bad.write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(Exception) as err:
        client.predict([handle_file(str(bad))], api_name="/analyze")
    assert "not a valid .npy file" in str(err.value)
    real = sample_file(BY_KEY["real-knee"])
    report = client.predict([handle_file(str(real))], api_name="/analyze")
    assert list(report["tasks"]["acl"]["planes"]) == ["sagittal"]
    assert report["exam"]["missing_planes"] == ["axial", "coronal"]


def test_auth_and_share_fail_soft_offline():
    """MRNET_AUTH turns on Gradio auth; MRNET_SHARE=1 cannot get a link offline and the app still serves."""
    with running_app({"MRNET_AUTH": "radiology:s3cret", "MRNET_SHARE": "1"}) as (url, proc, log):
        with pytest.raises(Exception):
            Client(url, verbose=False).predict([handle_file(str(sample_file(BY_KEY["real-knee"])))],
                                               api_name="/analyze")
        client = Client(url, auth=("radiology", "s3cret"), verbose=False)
        report = client.predict([handle_file(str(sample_file(BY_KEY["real-knee"])))], api_name="/analyze")
        assert report["tasks"]["acl"]["planes"]["sagittal"]["top_slice"] >= 0
        assert proc.poll() is None


def login_seconds(url: str, password: str) -> tuple[int, float]:
    import time
    import urllib.error
    import urllib.parse
    import urllib.request
    body = urllib.parse.urlencode({"username": "radiology", "password": password}).encode()
    start = time.perf_counter()
    try:
        status = urllib.request.urlopen(urllib.request.Request(url + "login", data=body), timeout=60).status
    except urllib.error.HTTPError as err:
        status = err.code
    return status, time.perf_counter() - start


def test_failed_logins_are_throttled_and_a_right_one_still_works():
    from mrnet.app.access import BASE_DELAY_S, FREE_FAILURES
    with running_app({"MRNET_AUTH": "radiology:s3cret"}) as (url, proc, log):
        answers = [login_seconds(url, f"guess{i}") for i in range(FREE_FAILURES + 2)]
        assert all(status >= 400 for status, _ in answers), answers
        # the first ones answer at once; past the free failures each attempt first waits (0.5 s, then 1 s)
        assert answers[FREE_FAILURES][1] >= BASE_DELAY_S and answers[FREE_FAILURES + 1][1] >= 2 * BASE_DELAY_S, answers
        status, _ = login_seconds(url, "s3cret")
        assert status == 200


def test_malformed_auth_stops_the_app_with_one_sentence():
    with pytest.raises(RuntimeError) as err:  # `python app.py` itself: it must stop with the sentence
        with running_app({"MRNET_AUTH": "radiology-without-a-password"}, attempts=1, process=True):
            pass
    assert "MRNET_AUTH must be user:password" in str(err.value) and "Traceback" not in str(err.value)


def test_the_throttle_forgets_old_failures():
    from mrnet.app.access import FREE_FAILURES, WINDOW_S, ThrottledLogin
    now = [0.0]
    login = ThrottledLogin("radiology", "s3cret", clock=lambda: now[0])
    for _ in range(FREE_FAILURES):
        assert run_async(login.check("radiology", "wrong")) is False
    assert login.delay("radiology") > 0
    now[0] += WINDOW_S + 1
    assert login.delay("radiology") == 0 and run_async(login.check("radiology", "s3cret")) is True


def test_parallel_guesses_are_paced_like_sequential_ones():
    """As many wrong passwords as one address may have in flight, sent at once, are scheduled at the same moments
    as the same number sent one after another; more are refused unchecked. Reservations are compared on a fake
    clock (sequential: the clock moves with each wait)."""
    import asyncio

    from mrnet.app.access import FREE_FAILURES, MAX_IN_FLIGHT_PER_ADDRESS, ThrottledLogin

    def schedule(parallel: bool, attempts: int) -> tuple[list[float], list[bool]]:
        now, times = [0.0], []

        async def sleep(seconds):
            if not parallel:
                now[0] += seconds  # a client that retries as soon as it is answered
            await asyncio.sleep(0)

        class Recorded(ThrottledLogin):
            def reserve(self, name, address):
                ticket = super().reserve(name, address)
                times.append(ticket.at if ticket else None)
                return ticket

        login = Recorded("radiology", "s3cret", clock=lambda: now[0], sleep=sleep)

        async def run():
            if parallel:
                return await asyncio.gather(*(login.check("radiology", f"guess{i}") for i in range(attempts)))
            return [await login.check("radiology", f"guess{i}") for i in range(attempts)]
        results = run_async(run())
        assert not any(results)
        return times

    sequential = schedule(False, MAX_IN_FLIGHT_PER_ADDRESS)
    assert schedule(True, MAX_IN_FLIGHT_PER_ADDRESS) == sequential
    assert sequential[-1] > 8  # the waits grow: 0.5, 1, 2, 4, 8 s past the free failures
    # a flood: the free attempts are answered at once (they hold no place), then MAX_IN_FLIGHT_PER_ADDRESS wait and
    # every other one is refused unchecked
    flood = schedule(True, 3 * MAX_IN_FLIGHT_PER_ADDRESS)
    assert flood[:MAX_IN_FLIGHT_PER_ADDRESS] == sequential
    assert flood.count(None) == 2 * MAX_IN_FLIGHT_PER_ADDRESS - FREE_FAILURES, flood
    # and the sequential guesser keeps being paced: 25 guesses take minutes
    assert schedule(False, 25)[-1] > 60


def test_abandoned_attempts_from_elsewhere_delay_the_real_user_at_most_the_maximum():
    """200 attempts from other addresses, all abandoned (cancelled) while waiting: the real user's right password,
    from an address of their own, is checked within MAX_DELAY_S, and the abandoned ones hold no place after."""
    import asyncio

    from mrnet.app.access import CLIENT_ADDRESS, MAX_DELAY_S, ThrottledLogin

    async def run():
        login = ThrottledLogin("radiology", "s3cret")
        waits = []

        async def recorded_sleep(seconds):
            waits.append(seconds)
            await asyncio.sleep(seconds)
        login.sleep = recorded_sleep

        async def attacker(i):
            CLIENT_ADDRESS.set(f"10.0.{i // 50}.{i % 50}")
            return await login.check("radiology", f"guess{i}")
        tasks = [asyncio.create_task(attacker(i)) for i in range(200)]
        await asyncio.sleep(0.3)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert login.in_flight == 0 and all(not r.reserved for r in login.addresses.values())
        waits.clear()
        CLIENT_ADDRESS.set("192.0.2.7")
        start = asyncio.get_running_loop().time()
        assert await login.check("radiology", "s3cret") is True
        return asyncio.get_running_loop().time() - start, waits

    elapsed, waits = run_async(run())
    assert all(w <= MAX_DELAY_S for w in waits) and elapsed <= MAX_DELAY_S + 1, (elapsed, waits)


def test_an_abandoned_flood_over_http_leaves_the_real_users_login_within_the_maximum():
    """The real app: 200 concurrent wrong logins from 127.0.0.2, each abandoned after 0.3 s; then the real
    user's right login from 127.0.0.1 is answered 200 within MAX_DELAY_S (plus a second of slack)."""
    import http.client
    import threading
    import time
    import urllib.parse

    from mrnet.app.access import MAX_DELAY_S
    with running_app({"MRNET_AUTH": "radiology:s3cret"}) as (url, proc, log):
        host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port

        def attempt(password: str, source: str, timeout: float):
            conn = http.client.HTTPConnection(host, port, timeout=timeout, source_address=(source, 0))
            try:
                conn.request("POST", "/login", urllib.parse.urlencode({"username": "radiology", "password": password}),
                             {"Content-Type": "application/x-www-form-urlencoded"})
                return conn.getresponse().status
            except OSError:
                return None  # abandoned
            finally:
                conn.close()
        threads = [threading.Thread(target=attempt, args=(f"guess{i}", "127.0.0.2", 0.3)) for i in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        start = time.perf_counter()
        status = attempt("s3cret", "127.0.0.1", 60)
        elapsed = time.perf_counter() - start
        assert status == 200 and elapsed <= MAX_DELAY_S + 1, (status, elapsed)


def test_the_page_and_its_config_carry_no_memory_addresses(app_url):
    """Object reprs ('<function f at 0x7f...>') in what the page loads would hand out memory addresses."""
    import re
    import urllib.request
    for path in ("", "?case=0003&task=acl", "config"):
        with urllib.request.urlopen(app_url + path, timeout=30) as response:
            text = response.read().decode("utf-8", errors="replace")
        assert not re.search(r" at 0x[0-9a-f]{6,}", text.replace("\\u003e", ">")), path


def test_an_analysis_sends_the_viewers_data_once(app_url):
    """The Analyze event's one message carries the viewer's payload once, as its `data` prop (an attribute of that
    name once made Gradio send a second, unread copy at the update's top level)."""
    import httpx
    config = httpx.get(app_url + "config").json()
    fn = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "run_analysis")
    sample = next(c for c in config["components"] if c.get("props", {}).get("elem_id") == "sample")
    title = sample["props"]["choices"][1][0]
    inputs = [title if i == sample["id"] else None for i in config["dependencies"][fn]["inputs"]]
    messages, at = event_messages(app_url, config, fn, inputs, "once0001")
    update = messages[-1]["output"]["data"][at]
    payload = update["props"]["data"]
    assert set(payload["planes"]) == {"axial", "coronal", "sagittal"} and payload["cams"]
    assert "data" not in update
    assert sum(len(json.dumps(m)) for m in messages) < 1.2 * len(json.dumps(payload))


def test_opening_a_case_sends_the_viewers_data_once(app_url):
    """A case opened in the Cases view (its `open` event, as cases.js triggers it): the payload goes once, though
    the event is a generator (Gradio's closing message would repeat it)."""
    import httpx
    config = httpx.get(app_url + "config").json()
    cases = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "cases")
    fn = next(i for i, d in enumerate(config["dependencies"]) if [cases, "open"] in d["targets"])
    messages, at = event_messages(app_url, config, fn, [], "once0002", trigger_id=cases,
                                  event_data={"dataset": "phantom", "case": "0011", "task": "acl"})
    payload = next(m for m in messages if m.get("msg") == "process_generating")["output"]["data"][at]["props"]["data"]
    assert set(payload["planes"]) == {"axial", "coronal", "sagittal"} and payload["link"]["case"] == "0011"
    assert sum(len(json.dumps(m)) for m in messages) < 1.2 * len(json.dumps(payload))


@pytest.mark.parametrize("data", [5, None, True, "x", 1e308, [1, 2]])
def test_an_open_event_with_data_of_any_type_answers_in_our_words(app_url, data):
    """#37: the Cases view's `open` with event data that is not an object: one sentence, not Python's words."""
    import httpx
    config = httpx.get(app_url + "config").json()
    cases = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "cases")
    fn = next(i for i, d in enumerate(config["dependencies"]) if [cases, "open"] in d["targets"])
    messages, _ = event_messages(app_url, config, fn, [], f"types{abs(hash(repr(data))) % 10**8:08d}",
                                 trigger_id=cases, event_data=data)
    last = messages[-1]
    assert last["msg"] == "process_completed" and not last["success"]
    said = json.dumps(last["output"])
    assert "this event carried something else" in said and "TypeError" not in said and "object is not" not in said


@pytest.mark.parametrize("files, sentence", [
    (5, "Send the exam's files: a list of one or more files."),
    ("axial.npy", "Send the exam's files: a list of one or more files."),
    ({"a": 1}, "Send the exam's files: a list of one or more files."),
    ([5], "One of the inputs is not a file uploaded with this request"),
    ([{"path": "/etc/passwd"}], "One of the inputs is not a file uploaded with this request")])
def test_a_wrong_typed_api_call_answers_in_our_words(app_url, files, sentence):
    """#37: the /analyze API given the wrong types answers with our sentence, not Gradio's pydantic text."""
    import httpx
    joined = httpx.post(app_url + "gradio_api/call/analyze", json={"data": [files]}, timeout=60)
    assert joined.status_code == 200, joined.text
    text = httpx.get(app_url + f"gradio_api/call/analyze/{joined.json()['event_id']}", timeout=60).text
    assert "event: error" in text and sentence in text and "pydantic" not in text and "Traceback" not in text, text


def test_named_reviewers_log_in_with_their_own_passwords(tmp_path):
    """MRNET_USERS in the real app: each reviewer's own password opens it, another's does not."""
    from mrnet.app.access import add_user
    users = tmp_path / "users.txt"
    add_user(users, "ada", "lovelace-1815")
    add_user(users, "grace", "hopper-1906")
    with running_app({"MRNET_USERS": str(users)}) as (url, proc, log):
        import urllib.error
        import urllib.parse
        import urllib.request

        def status(name, password):
            body = urllib.parse.urlencode({"username": name, "password": password}).encode()
            try:
                return urllib.request.urlopen(urllib.request.Request(url + "login", data=body), timeout=60).status
            except urllib.error.HTTPError as err:
                return err.code
        assert status("ada", "lovelace-1815") == 200 and status("grace", "hopper-1906") == 200
        assert status("ada", "hopper-1906") == 400 and status("alan", "lovelace-1815") == 400


def test_a_malformed_users_file_stops_the_app_with_one_sentence(tmp_path):
    users = tmp_path / "users.txt"
    users.write_text("ada:plain-text-password\n")
    with pytest.raises(RuntimeError) as err:
        with running_app({"MRNET_USERS": str(users)}, attempts=1, process=True):
            pass
    assert "line 1 is not `name:hash`" in str(err.value) and "Traceback" not in str(err.value)
