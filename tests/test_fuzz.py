"""Fuzzing every loader: only our error type or a valid Exam ever comes out, and nothing is left in the temp dir."""
import io
import os
import tempfile
import zipfile

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays, scalar_dtypes

from mrnet import MRNetError
from mrnet.core.exam import Exam
from mrnet.inputs.load import load_items

from helpers import npy_bytes as npy

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = st.sampled_from(["axial.npy", "coronal.npz", "x.zip", "sagittal/0001.npy", "IM1.dcm", "scan", "a.txt"])


def check(items):
    try:
        exam = load_items(items)
    except MRNetError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(exam, Exam) and exam.volumes
    for v in exam.volumes.values():
        assert v.dtype == np.uint8 and v.ndim == 3 and v.shape[1:] == (256, 256) and v.shape[0] >= 1


@SETTINGS
@given(name=NAMES, data=st.binary(max_size=4096))
def test_random_bytes(name, data):
    check([(name, data)])


@SETTINGS
@given(name=NAMES, prefix=st.sampled_from([b"\x93NUMPY", b"PK\x03\x04", bytes(128) + b"DICM"]),
       data=st.binary(max_size=2048))
def test_random_bytes_behind_real_magic(name, prefix, data):
    check([(name, prefix + data)])


@SETTINGS
@given(array=arrays(scalar_dtypes(), array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=20)))
def test_random_arrays(array):
    check([("axial.npy", npy(array))])


@SETTINGS
@given(members=st.lists(st.tuples(st.sampled_from(["axial.npy", "a/coronal.npy", "../x.npy", "IM.dcm", "n.txt"]),
                                  st.one_of(st.binary(max_size=512),
                                            st.builds(lambda s: npy(np.full((2, 16, 16), s, np.uint8)),
                                                      st.integers(0, 255)))),
                        max_size=5))
def test_random_zips(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members:
            zf.writestr(name, data)
    check([("exam.zip", buf.getvalue())])


def test_no_temp_file_is_left_behind():
    before = set(os.listdir(tempfile.gettempdir()))
    bad = [("axial.npy", b"\x93NUMPY junk"), ("x.zip", b"PK\x03\x04junk"), ("IM.dcm", bytes(128) + b"DICMjunk"),
           ("a.npz", b"PK\x03\x04"), ("sagittal.npy", npy(np.full((2, 8, 8), np.nan)))]
    for item in bad:
        try:
            load_items([item])
        except MRNetError:
            pass
    assert set(os.listdir(tempfile.gettempdir())) == before
