"""Load benchmark: N concurrent gradio_client sessions x M analyses against the real app.

    .venv/bin/python bench/load_bench.py [--clients 8] [--rounds 5]

Prints JSON: failures, whether every result equals the sequential one, throughput and the server's
peak RSS (VmHWM). The test in test_load.py runs it and asserts correctness, never timings."""
import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "support"))  # the tests' helpers (server, factories)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gradio_client import Client, handle_file  # noqa: E402

from mrnet.sets.samples import SAMPLES, sample_file  # noqa: E402

from server import running_app  # noqa: E402


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def bad_inputs(folder: Path, count: int) -> list[list[str]]:
    """`count` hostile inputs (at least the bombs), written as files to upload: every decoder bomb that must be
    refused (tests/support/bombs.py: codestreams declaring 20000-65535 pixels a side, Deflated DICOM, far or NaN
    NIfTI offsets, 1 GB of zeros)
    and the rest from the hostile corpus (the big zip bombs included)."""
    from bombs import bombs
    from hostile_corpus import corpus
    refused_bombs = [b for b in bombs() if b[2]]
    everyday = [c for c in corpus() if c[1] and len(c[1]) <= 5]
    chosen = refused_bombs + everyday[:: max(1, len(everyday) // count)][:max(0, count - len(refused_bombs))]
    out = []
    for n, (label, files, _) in enumerate(chosen):
        paths = []
        for name, blob in files:
            path = folder / f"{n:03d}" / Path(name).name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
            paths.append(str(path))
        out.append(paths)
    return out


def run_load(url: str, pid: int, clients: int = 8, rounds: int = 5, bad_clients: int = 0) -> dict:
    import tempfile
    with tempfile.TemporaryDirectory(prefix="mrnet-bad-") as folder:  # the bad inputs, removed afterwards
        return load_with(url, pid, clients, rounds, bad_clients,
                         bad_inputs(Path(folder), 40) if bad_clients else [])


def load_with(url: str, pid: int, clients: int, rounds: int, bad_clients: int, bad: list) -> dict:
    files = [str(sample_file(s)) for s in SAMPLES]
    sequential = {f: Client(url, verbose=False).predict([handle_file(f)], api_name="/analyze")["tasks"] for f in files}
    rss_before = peak_rss_mb(pid)

    def session(k: int):
        client = Client(url, verbose=False)
        results = []
        for r in range(rounds):
            f = files[(k + r) % len(files)]
            try:
                results.append((f, client.predict([handle_file(f)], api_name="/analyze")["tasks"], None))
            except Exception as exc:  # counted, not raised: the benchmark reports every failure
                results.append((f, None, repr(exc)))
        return results

    done, refused, accepted = [], [], []

    def hostile(k: int):
        client = Client(url, verbose=False)
        for n in range(k, 10**6, max(bad_clients, 1)):
            if done:
                return
            try:
                client.predict([handle_file(f) for f in bad[n % len(bad)]], api_name="/analyze")
                accepted.append(bad[n % len(bad)])
            except Exception:  # the expected answer: one sentence, as an error
                refused.append(n)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients + bad_clients) as pool:
        attackers = [pool.submit(hostile, k) for k in range(bad_clients)]
        outcomes = [r for rs in pool.map(session, range(clients)) for r in rs]
        done.append(True)
        for a in attackers:
            a.result()
    seconds = time.perf_counter() - start
    failures = [e for _, _, e in outcomes if e]
    mismatches = sum(1 for f, tasks, e in outcomes if not e and tasks != sequential[f])
    return {"clients": clients, "rounds": rounds, "analyses": len(outcomes), "failures": len(failures),
            "first_failure": failures[0] if failures else None, "mismatches": mismatches,
            "seconds": round(seconds, 2), "analyses_per_s": round(len(outcomes) / seconds, 2),
            "bad_clients": bad_clients, "bad_inputs_refused": len(refused), "bad_inputs_accepted": len(accepted),
            "server_peak_rss_mb_before": round(rss_before, 1), "server_peak_rss_mb": round(peak_rss_mb(pid), 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bad-clients", type=int, default=0, help="clients sending hostile inputs meanwhile")
    args = parser.parse_args()
    with running_app(process=True) as (url, proc, log):
        print(json.dumps(run_load(url, proc.pid, args.clients, args.rounds, args.bad_clients), indent=2))
