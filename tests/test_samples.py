"""Sample patients: made once from their seed, safely when several callers ask at the same time."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mrnet import load_exam
from mrnet.phantom import generate_exam
from mrnet.sets.samples import BY_KEY, SAMPLES, sample_file


def test_concurrent_first_use_makes_one_complete_file(tmp_path, set_env):
    set_env("MRNET_SAMPLE_DIR", str(tmp_path))
    sample = BY_KEY["phantom-normal"]
    with ThreadPoolExecutor(4) as pool:
        paths = list(pool.map(lambda _: sample_file(sample), range(4)))
    assert len(set(paths)) == 1 and [p.name for p in tmp_path.iterdir()] == [paths[0].name]  # no temp file left
    exam = load_exam([paths[0]])
    expected = generate_exam(sample.seed).volumes
    for plane, volume in expected.items():
        np.testing.assert_array_equal(exam.volumes[plane], volume)


def test_phantom_samples_show_what_their_title_says():
    for sample in SAMPLES:
        if sample.seed is None:
            continue
        phantom = generate_exam(sample.seed)
        assert phantom.labels == sample.truth and tuple(phantom.lesions) == sample.lesions, sample.key
