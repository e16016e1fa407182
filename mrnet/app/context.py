"""Everything the app holds while it runs, made by one call: `create_context(settings)` resolves the weights
(maybe over the network), opens the labelled sets, and makes the pools, stores and limits. Importing the app does
none of this, so a test builds as many apps as it needs, each with its own settings, in one process.
"""
from __future__ import annotations

import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from gradio.utils import get_upload_folder

from mrnet.app.browse import Browsable, CaseBrowser, table_payload, weights_name, with_scores
from mrnet.app.kept import KeptAnalyses, SampleAnswers, ZipFolder
from mrnet.app.memory import release_memory
from mrnet.app.payload import viewer_payload
from mrnet.app.pixels import PixelStore
from mrnet.app.text import markdown_text
from mrnet.core.analysis import Analysis, analyze
from mrnet.core.compute import Compute, compute_for, for_zero_gpu
from mrnet.core.errors import MRNetError
from mrnet.core.hub import Resolved, resolve, resolve_compare
from mrnet.core.settings import Settings, settings
from mrnet.core.weights import Weights
from mrnet.inputs.load import load_exam
from mrnet.sets.cases import open_source
from mrnet.sets.flags import FlagStore, SaveLimit
from mrnet.sets.phantom_set import SCORES as PHANTOM_SCORES
from mrnet.sets.phantom_set import phantom_cases
from mrnet.sets.samples import BY_KEY, sample_file
from mrnet.sets.scores import weights_digest
from mrnet.sets.shares import ShareStore

# The weights each app's analyses use, by the app's id: the function that runs the model takes the id, not the
# weights, so that on a ZeroGPU Space only an id crosses into the GPU worker (it forks with this table filled).
ON_DEVICE: dict[tuple[str, str], tuple[Weights, Compute]] = {}


def gpu_seconds(exam, key: tuple[str, str] | None = None) -> int:
    """What a ZeroGPU Space asks for one analysis: 10 s, and 0.1 s per slice (3 x 128 slices: 48 s), at most
    120 s. Asking for less than needed fails the call; asking for more makes visitors wait in ZeroGPU's queue."""
    slices = sum(len(volume) for volume in getattr(exam, "volumes", {}).values())
    return int(min(120, 10 + 0.1 * slices))


def analyze_on_device(exam, key: tuple[str, str]) -> Analysis:
    """The model's work, the only part that needs the GPU (on a ZeroGPU Space: gpu_seconds per call)."""
    weights, compute = ON_DEVICE[key]
    return analyze(exam, weights, compute)


analyze_on_device = for_zero_gpu(analyze_on_device, duration_s=gpu_seconds)


class Analyzer:
    """Reads and analyses exams for one app: its weights, compare mode's second weights (or None), and one limit
    on analyses at a time for the whole app (Gradio's concurrency limit is per event, and the API, Analyze, a case
    opened and its prefetch are four events; each holds a slot while it reads and analyses an exam)."""

    def __init__(self, weights: Weights, second: Weights | None, compute: Compute, slots: int):
        self.weights, self.second_weights, self.compute = weights, second, compute
        self.slots = threading.BoundedSemaphore(slots)
        self.id = uuid.uuid4().hex
        ON_DEVICE[(self.id, "a")] = (weights, compute)
        if second is not None:
            ON_DEVICE[(self.id, "b")] = (second, compute)

    @property
    def has_second(self) -> bool:
        return self.second_weights is not None

    def read_and_analyze(self, read, second: bool = False) -> Analysis:
        """`read()` gives the exam; reading and analysing it hold one of the app's slots, and the memory it took
        goes back after."""
        with self.slots:
            try:
                return analyze_on_device(read(), (self.id, "b" if second and self.has_second else "a"))
            finally:
                release_memory()

    def first(self, exam) -> Analysis:
        return self.read_and_analyze(lambda: exam)

    def second(self, exam) -> Analysis:
        return self.read_and_analyze(lambda: exam, second=True)


@dataclass
class Context:
    settings: Settings
    resolved: Resolved               # the weights, and a notice when they are not what was asked for
    compare: Resolved | None         # compare mode's second weights (MRNET_COMPARE), or None
    analyzer: Analyzer
    sets: dict[str, Browsable]       # labelled sets by name (MRNET_DATA's first when given, then the phantom set)
    sets_problem: str                # why MRNET_DATA cannot be browsed, or ""
    browser: CaseBrowser
    tables: dict[str, dict]          # what the Cases view draws of each set (they do not change while the app runs)
    flags: FlagStore
    saves: SaveLimit
    shares: ShareStore               # uploads their visitors chose to share (MRNET_SHARE_DAYS, MRNET_SHARE_MB)
    pixels: PixelStore               # the viewer's slices, fetched by the browser as files
    kept: KeptAnalyses               # each session's analysis, for its zip and flags, within one bound
    zips: ZipFolder                  # the zips, one per session, within one bound
    samples: SampleAnswers           # each sample's analysis and viewer payload, made once
    weights_id: str                  # what a flag says about the weights: their Hub commit, or their digest
    second_id: str | None
    names: dict[str, str]            # "a", "b" -> the weights' short names (compare mode)

    @property
    def weights(self) -> Weights:
        return self.analyzer.weights

    def close(self) -> None:
        """What the app made goes: its pools, its files on disk, its weights in the device table."""
        self.browser.pool.shutdown(wait=False, cancel_futures=True)
        for which in ("a", "b"):
            ON_DEVICE.pop((self.analyzer.id, which), None)
        for folder in (self.pixels.folder, self.zips.folder):
            shutil.rmtree(folder, ignore_errors=True)

    @property
    def second(self) -> Weights | None:
        return self.analyzer.second_weights


def labelled_sets(config: Settings, weights: Weights, compare: Resolved | None) -> tuple[dict[str, Browsable], str]:
    """MRNET_DATA's set (the default when given) and the phantom set; a set that cannot be opened is said, and
    the app runs on without it."""
    sets, problem = {}, ""
    if config.data:
        try:
            cases = open_source(config.data, config.data_split)
            sets[cases.name] = with_scores(cases, config.scores, weights, name=weights_name(weights))
            if compare is not None:
                sets[cases.name].compare = with_scores(cases, config.compare_scores, compare.weights,
                                                       weights_name(compare.weights), "set MRNET_COMPARE_SCORES=FILE")
        except MRNetError as exc:
            problem = f"⚠️ MRNET_DATA ({markdown_text(config.data)}) cannot be browsed: {markdown_text(exc)}"
    sets["phantom"] = with_scores(phantom_cases(), PHANTOM_SCORES, weights, name=weights_name(weights))
    if compare is not None:  # the phantom set's table of the second weights lives in their folder
        folder = Path(str(compare.weights.source.get("folder", "")))
        folder = folder if folder.is_absolute() else PHANTOM_SCORES.parent.parent / folder
        sets["phantom"].compare = with_scores(phantom_cases(), folder / "scores-phantom.csv", compare.weights,
                                              weights_name(compare.weights),
                                              "save FILE as scores-phantom.csv in their weights folder")
    return sets, problem


def weights_id(weights: Weights) -> str:
    return str(weights.source.get("commit") or weights_digest(weights))


def create_context(config: Settings | None = None, compute: Compute | None = None) -> Context:
    """The app's state from its settings (default: the environment's, read once)."""
    config = config or settings()
    compute = compute or compute_for()
    resolved = resolve(config.weights)
    weights = resolved.weights.to(compute.device)
    compare = resolve_compare(config.compare, weights)
    second = compare.weights.to(compute.device) if compare is not None else None
    analyzer = Analyzer(weights, second, compute, config.concurrency)
    sets, problem = labelled_sets(config, weights, compare)
    cache = Path(get_upload_folder())
    pixels = PixelStore(cache / f"mrnet-viewer-{uuid.uuid4().hex}")  # one folder per app inside Gradio's cache
    browser = CaseBrowser(sets, analyzer, store=pixels)

    def sample_answer(key: str):
        analysis = analyzer.read_and_analyze(lambda: load_exam([sample_file(BY_KEY[key])]))
        return analysis, viewer_payload(analysis, store=pixels, link={"sample": key})  # a sample's view has a link
    return Context(
        settings=config, resolved=resolved, compare=compare, analyzer=analyzer, sets=sets, sets_problem=problem,
        browser=browser, tables={name: table_payload(item) for name, item in sets.items()},
        flags=FlagStore(config.flags), saves=SaveLimit(), pixels=pixels,
        shares=ShareStore(config.shares or Path(config.flags).parent / "shares", config.share_days, config.share_mb),
        kept=KeptAnalyses(config.kept_analyses_mb * 2**20),
        zips=ZipFolder(cache / f"mrnet-zips-{uuid.uuid4().hex}", config.max_zips_mb * 2**20),  # served, not copied
        samples=SampleAnswers(sample_answer),
        weights_id=weights_id(weights), second_id=weights_id(second) if second is not None else None,
        names={"a": weights_name(weights), "b": weights_name(second) if second is not None else ""})
