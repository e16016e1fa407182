"""One visitor must not stall another (#37): a flood of cheap Cases-view `open` events that each name another case
to prefetch, and a flood of compare-mode link loads, leave a victim's case opening and page load within 2 s of
their quiet times. The real app, through Gradio's queue, as the page sends its events."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from helpers import event_messages
from server import running_app

pytestmark = pytest.mark.slow


def timed(call) -> float:
    start = time.perf_counter()
    messages, _ = call()
    assert messages[-1].get("msg") == "process_completed" and messages[-1].get("success"), messages[-1]
    return time.perf_counter() - start


def test_floods_of_opens_and_compare_links_do_not_stall_another_visitor(random_weights):
    with running_app({"MRNET_COMPARE": str(random_weights)}) as (url, proc, log):
        config = httpx.get(url + "config").json()
        cases = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "cases")
        open_fn = next(i for i, d in enumerate(config["dependencies"]) if [cases, "open"] in d["targets"])
        load_fn = next(i for i, d in enumerate(config["dependencies"]) if d["targets"][0][1] == "load")
        case_ids = [f"{i:04d}" for i in range(40)]  # the phantom set's first cases

        def open_case(session, case, next_case=None):
            return event_messages(url, config, open_fn, [], session, trigger_id=cases,
                                  event_data={"dataset": "phantom", "case": case, "task": "acl", "next": next_case})

        def page_load(session, query=""):
            return event_messages(url, config, load_fn, [], session, query=query)

        open_case("warm0001", "0001")  # the case the flood names, kept from here on
        quiet_open = timed(lambda: open_case("quiet001", "0020"))
        quiet_load = timed(lambda: page_load("quiet002"))
        open_case("warm0002", "0001")
        page_load("warm0003", "?case=0001&compare=1")  # B's maps of the flood's link, kept

        errors = []

        def hostile(call):
            try:
                call()
            except Exception as exc:  # noqa: BLE001 - collected and shown below
                errors.append(exc)
        # 150 cheap opens, as fast as 8 connections answer them: each names another case to prepare next
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: hostile(lambda: open_case(f"open{i:04d}", "0001", case_ids[i % len(case_ids)])),
                          range(150)))
        after_opens = timed(lambda: open_case("victim01", "0021"))

        def during_loads(query: str, tag: str) -> tuple[float, float]:
            """The victim's open and page load while 40 page loads of `query` arrive at once."""
            loads = [threading.Thread(target=hostile, args=(lambda i=i: page_load(f"{tag}{i:04d}", query),))
                     for i in range(40)]
            for thread in loads:
                thread.start()
            time.sleep(0.5)
            opened = timed(lambda: open_case(f"{tag}v1", "0022" if tag == "plain" else "0023"))
            loaded = timed(lambda: page_load(f"{tag}v2"))
            for thread in loads:
                thread.join(timeout=300)
            return opened, loaded
        open_amid_plain, _ = during_loads("", "plain")
        open_amid_links, load_amid_links = during_loads("?case=0001&compare=1", "link")
        assert not errors, errors[:3]
        # within 2 s of the quiet time, and of twice it: other test workers share the two cores, and a CI run had
        # the quiet open at 4.3 s and the victim's at 7.8 (before the fix: 95 s and 22.8 s)
        assert after_opens <= 2 * quiet_open + 2, (after_opens, quiet_open)
        assert load_amid_links <= 2 * quiet_load + 2, (load_amid_links, quiet_load)
        # 40 new sessions at once cost Gradio about 0.1 s of CPU each, whatever they load: compare-mode links
        # must cost no more than that, within the same slack as above (a CI run had 11.7 s amid links and 8.1 s
        # amid plain loads, with other workers on the cores; before the fix each link made B's maps again)
        assert open_amid_links <= 2 * open_amid_plain + 2, (open_amid_links, open_amid_plain)
        assert proc.poll() is None
