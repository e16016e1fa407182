"""Hostile score tables (#37): whatever a table holds, `read_scores` (the Cases view, `mrnet compare`) answers
with one sentence naming the file, or reads it; `compare`'s output is strict JSON and escapes what it prints."""
import json
import math
from pathlib import Path

import pytest
from scipy import stats

from mrnet.core.errors import MRNetError
from mrnet.sets.scores import FIELDS, read_score_columns, read_scores
from mrnet.sets.statistics import binomial_half_tail

from helpers import mrnet_cli

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "weights" / "scores-phantom.csv"
HEADER = ",".join(FIELDS) + "\n"


def row(case="0001", task="acl", label="1", probability="0.7", weights="w"):
    return f"{case},{task},{label},{probability},sagittal,3,,,0.7,{weights},c{case}\n"


HOSTILE = {
    "nan": (HEADER + row(probability="nan"), "probability nan, which is not a number between 0 and 1"),
    "infinite": (HEADER + row(probability="inf"), "probability inf, which is not a number between 0 and 1"),
    "negative": (HEADER + row(probability="-0.1"), "probability -0.1, which is not a number between 0 and 1"),
    "above one": (HEADER + row(probability="1.5"), "probability 1.5, which is not a number between 0 and 1"),
    "label 2": (HEADER + row(label="2"), "the label 2, which is not 0, 1 or empty"),
    "duplicate": (HEADER + row() + row("0002") + row(probability="0.1"),
                  "case '0001' is listed twice for 'acl' (lines 2 and 4)"),
    "long cell": (HEADER + row(case="x" * 200_000), "line 2 is not CSV"),
    "long short cell": (HEADER + row(case="x" * 5000), "line 2 has a cell longer than 1000 characters"),
    "not a table": ("hello\n", "is not a score file written by `python -m mrnet score`"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
@pytest.mark.parametrize("reader", ["rows", "columns"])
def test_a_hostile_table_is_one_sentence(tmp_path, name, reader):
    """The same sentence from the Cases view's reader and from `compare`'s (arrays for 10^6 cases)."""
    text, sentence = HOSTILE[name]
    path = tmp_path / "table.csv"
    path.write_text(text)
    with pytest.raises(MRNetError) as err:
        read_scores(path) if reader == "rows" else read_score_columns(path, {})
    assert sentence in str(err.value) and "table.csv" in str(err.value), str(err.value)


def test_the_earliest_repeated_row_is_named_whatever_its_task(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text(HEADER + row("0001", "acl") + row("0002", "meniscus") + row("0002", "meniscus", probability="0.2")
                    + row("0001", "acl", probability="0.3"))
    for read in (read_scores, lambda p: read_score_columns(p, {})):
        with pytest.raises(MRNetError, match=r"case '0002' is listed twice for 'meniscus' \(lines 3 and 4\)"):
            read(path)


def test_compare_pairs_cases_by_id_whatever_the_rows_order(tmp_path):
    """B's rows shuffled (and its cases first seen in another order) give the same report, number for number."""
    import random
    rows = (SHIPPED.read_text().splitlines())
    shuffled = rows[1:]
    random.Random(0).shuffle(shuffled)
    (tmp_path / "b.csv").write_text("\n".join([rows[0], *shuffled]) + "\n")
    from mrnet.toolchain.compare import compare_tables
    same, moved = compare_tables(SHIPPED, SHIPPED), compare_tables(SHIPPED, tmp_path / "b.csv")
    assert moved["tasks"] == same["tasks"] and same["tasks"]["acl"]["auc_difference"] == 0


def test_encodings_size_and_special_files(tmp_path):
    with_bom = tmp_path / "bom.csv"
    with_bom.write_bytes(b"\xef\xbb\xbf" + (HEADER + row()).encode())
    assert [r["case"] for r in read_scores(with_bom).rows] == ["0001"]  # the first line is the header, not lost
    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEADER + row(case="caf\xe9")).encode("latin-1"))
    with pytest.raises(MRNetError, match="latin.csv is not UTF-8 text"):
        read_scores(latin)
    big = tmp_path / "big.csv"
    big.write_text(HEADER + row() * 2000)
    with pytest.raises(MRNetError, match="larger than 0 MB"):
        read_scores(big, max_mb=0)
    with pytest.raises(MRNetError, match="zero is not a regular file"):
        read_scores(Path("/dev/zero"))


def compare(capsys, *args) -> tuple[int, str, str]:
    """`mrnet compare ARGS` in this process (the CLI's own main: its exit code, stdout and stderr)."""
    from mrnet.cli import main
    code = main(["compare", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_answers_hostile_tables_in_one_line_and_escapes_what_it_prints(tmp_path, capsys):
    for name in ("nan", "duplicate", "long cell"):
        path = tmp_path / f"{name.replace(' ', '-')}.csv"
        path.write_text(HOSTILE[name][0])
        code, _, err = compare(capsys, SHIPPED, path)
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    code, _, err = compare(capsys, SHIPPED, "/dev/zero")
    assert code == 2 and "not a regular file" in err
    # a task named with an escape sequence: printed as an escape, never obeyed by the terminal
    rows = SHIPPED.read_text().replace(",acl,", ",acl\x1b[2J,")
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(rows)
    b.write_text(rows)
    code, out, _ = compare(capsys, a, b)
    assert code == 0 and "\x1b" not in out and "acl\\x1b[2J" in out
    code, out, _ = compare(capsys, a, b, "--json")
    report = json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    assert report["tasks"]["acl\x1b[2J"]["mcnemar_p"] == 1.0
    # and the installed command says the same, in one line, from its own process
    done = mrnet_cli("compare", SHIPPED, tmp_path / "nan.csv")
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize("k, n", [(0, 1), (3, 10), (40, 100), (4_900, 10_000), (49_800, 100_000), (10, 100_000)])
def test_mcnemars_tail_in_log_space_matches_scipy(k, n):
    expected = stats.binom.cdf(k, n, 0.5)
    assert math.isclose(binomial_half_tail(k, n), expected, rel_tol=1e-9, abs_tol=1e-300)


def test_a_bad_second_table_is_one_notice_and_the_cases_view_still_draws(tmp_path, random_weights):
    """NaN probabilities in the second weights' scores-phantom.csv once reached the Cases view's calibration as
    null and the view never drew: now that table is a notice, and the payload is strict JSON."""
    from mrnet.app.browse import table_payload, with_scores
    from mrnet.core.weights import load_weights
    from mrnet.sets.phantom_set import SCORES, phantom_cases
    bad = tmp_path / "scores-phantom.csv"
    lines = SCORES.read_text().splitlines()
    cells = lines[1].split(",")
    cells[3] = "nan"
    bad.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    shipped = load_weights(ROOT / "weights")
    first = with_scores(phantom_cases(), SCORES, shipped, name="A")
    first.compare = with_scores(phantom_cases(), bad, load_weights(random_weights), "B", "save FILE as scores-phantom.csv")
    payload = json.loads(json.dumps(table_payload(first), allow_nan=False))
    assert "scores-phantom.csv: line" in payload["compare"]["notice"] and not payload["compare"]["scored"]
    assert payload["scored"] and payload["calibration"]  # A's view draws as before


def test_the_fast_reader_and_the_row_reader_read_the_same_numbers(tmp_path, monkeypatch):
    """compare's fast path (pandas' C parser) and the row reader give the same arrays wherever the fast path
    reads a table at all; the shipped table goes the fast way."""
    import numpy as np

    from mrnet.sets import scores
    shipped = SHIPPED.read_text()
    lines = shipped.splitlines()
    header = lines[0].split(",")
    moved = [",".join(reversed(line.split(","))) for line in lines]  # the columns in another order
    variants = {
        "shipped": shipped,
        "BOM": "\ufeff" + shipped,
        "CRLF": shipped.replace("\n", "\r\n"),
        "blank lines": shipped.replace("\n0001,", "\n\n0001,"),
        "columns reordered": "\n".join(moved) + "\n",
        "a quoted comma": shipped.replace("phantom-v2-seed350000", '"phantom, v2"'),
        "a quoted newline": shipped.replace("phantom-v2-seed350000", '"phantom\nv2"'),
        "extra column": "\n".join(line + ",x" for line in lines) + "\n",
        "label 01": shipped.replace(",acl,0,", ",acl,00,", 1),
    }
    assert len(header) == 11
    fast_used = set()
    for name, text in variants.items():
        path = tmp_path / f"{len(fast_used)}-{name}.csv"
        path.write_bytes(text.encode())
        fast = scores.fast_columns(scores.ScoreRows(path), {})
        with monkeypatch.context() as m:
            m.setattr(scores, "fast_columns", lambda table, ids: None)
            rows = scores.read_score_columns(path, {})
        got = scores.read_score_columns(path, {})
        if fast is not None:
            fast_used.add(name)
        for result in filter(None, (fast, got)):
            assert result.weights == rows.weights and set(result.tasks) == set(rows.tasks), name
            for task, t in rows.tasks.items():
                for column in ("case", "label", "probability", "content"):
                    assert np.array_equal(getattr(result.tasks[task], column), getattr(t, column)), (name, column)
    assert {"shipped", "BOM", "CRLF", "columns reordered", "a quoted comma"} <= fast_used


def test_a_table_of_many_tasks_or_weights_is_refused_by_compares_reader(tmp_path):
    """compare's reader keeps arrays per task: a table naming 65 tasks (or 65 weights) is not a score table."""
    tasks = tmp_path / "tasks.csv"
    tasks.write_text(HEADER + "".join(row(case=f"{i:04d}", task=f"task{i}") for i in range(65)))
    weights = tmp_path / "weights.csv"
    weights.write_text(HEADER + "".join(row(case=f"{i:04d}", weights=f"w{i}") for i in range(65)))
    with pytest.raises(MRNetError, match="tasks.csv names more than 64 tasks"):
        read_score_columns(tasks, {})
    with pytest.raises(MRNetError, match="weights.csv names more than 64 weights"):
        read_score_columns(weights, {})
    assert len(read_scores(tasks).rows) == 65  # the Cases view's reader has no such bound: it keeps rows
