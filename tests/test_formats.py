"""Reading and writing ink files: every format, detection, limits and hostile input."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import posix
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest

import vrnn
from vrnn import Ink, InkFormatError
from vrnn.formats import (
    DEFAULT_LIMITS,
    READ_FORMATS,
    TRAINING_LIMITS,
    Limits,
    detect_format,
    ink_to_json_bytes,
    ink_to_svg,
    inkml,
    omniglot,
    read_ink,
    write_ink,
)

DATA = Path(__file__).parent / "data" / "formats"


def strokes_of(ink: Ink) -> list[list[list[float]]]:
    return [s.tolist() for s in ink.strokes]


def times_of(ink: Ink):
    return None if ink.times is None else [t.tolist() for t in ink.times]


def object_array(sequences) -> np.ndarray:
    """A 1-D object array of int16 (N, 3) arrays, as sketch-rnn's data sets hold them."""
    array = np.empty(len(sequences), dtype=object)
    for i, sequence in enumerate(sequences):
        array[i] = np.asarray(sequence, dtype=np.int16)
    return array


def npz_bytes(compressed: bool = False, **members) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **members)
    return buffer.getvalue()


def object_npy(payload: bytes, shape=(1,)) -> bytes:
    """An .npy member declaring an object array, followed by an arbitrary pickle payload."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "|O", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + payload


def zip_members(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return buffer.getvalue()


def message_of(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message, message
    return message


# ------------------------------------------------------------------ fixtures
def test_public_names_work_from_the_package():
    assert vrnn.read_ink is read_ink and vrnn.write_ink is write_ink
    assert issubclass(InkFormatError, ValueError)
    assert DEFAULT_LIMITS == Limits() and DEFAULT_LIMITS.max_bytes == 5_000_000


def test_iam_line_strokes_with_times():
    (ink,) = read_ink(DATA / "iam_line.xml")
    assert strokes_of(ink) == [
        [[1073, 1058], [1072, 1085], [1066, 1112]],
        [[1139, 1014]],
        [[1200.5, 1020], [1210, 1031.25]],
    ]
    assert times_of(ink) == [[769.05, 769.10, 769.15], [769.64], [770.01, 770.06]]
    assert ink.label is None and ink.writer is None


def test_iam_writer_from_original_form_and_points_without_times():
    xml = (
        b'<WhiteboardCaptureSession><General><Form id="a01-000" writerID="10000"/></General>'
        b'<StrokeSet><Stroke><Point x="1" y="2"/><Point x="3" y="4"/></Stroke></StrokeSet>'
        b"</WhiteboardCaptureSession>"
    )
    (ink,) = read_ink(xml, name="a01-000.xml")
    assert ink.writer == "10000" and ink.times is None and strokes_of(ink) == [[[1, 2], [3, 4]]]


def test_uji_v2_crlf_blocks_become_one_ink_each():
    first, second = read_ink(DATA / "uji_v2_crlf.txt")
    assert (first.label, first.writer, first.meta["session"]) == ("a", "W01", "trn_UJI_W01-01")
    assert strokes_of(first) == [[[557, 844], [550, 803], [505, 803]]]
    assert (second.label, second.writer) == ("ñ", "W18")
    assert strokes_of(second) == [[[100, 200], [110, 210], [120, 230], [125, 260]], [[90, 150], [140, 140]]]
    assert first.times is None


def test_uji_lf_and_crlf_and_cr_read_the_same():
    crlf = (DATA / "uji_v2_crlf.txt").read_bytes()
    for variant in (crlf.replace(b"\r\n", b"\n"), crlf.replace(b"\r\n", b"\r")):
        got = read_ink(variant, name="x.txt")
        want = read_ink(crlf, name="x.txt")
        assert [strokes_of(i) for i in got] == [strokes_of(i) for i in want]
        assert [i.label for i in got] == [i.label for i in want]


def test_uji_v1_unipen_style():
    first, second = read_ink(DATA / "UJIpenchars-w07.txt")
    assert (first.label, first.writer) == ("a", "W07")
    assert strokes_of(first) == [[[557, 844], [550, 803], [505, 803]]]
    assert second.label == "t" and len(second.strokes) == 2


def test_uji_without_numstrokes_and_with_header_lines_is_tolerated():
    text = b"UJI PEN CHARACTERS v1\nWORD 7 W03-1\nPOINTS 2 # 1 2 3 4\nPOINTS 1 # 5 6\n"
    (ink,) = read_ink(text, format="uji")
    assert ink.label == "7" and ink.writer == "W03" and len(ink.strokes) == 2


def test_real_uji_slices_parse_completely(uji_dir):
    inks = []
    for path in sorted(uji_dir.glob("*.txt")):
        inks += read_ink(path)
    assert len(inks) == 219
    assert sum(ink.num_points for ink in inks) == 11_748
    assert {ink.writer for ink in inks} == {"W01", "W10", "W26", "W28", "W29", "W38", "W41", "W56", "W48"}
    assert all(ink.label and len(ink.label) == 1 for ink in inks)
    assert all(ink.times is None for ink in inks)


def test_inkml_flat_document_is_one_ink_with_truth_label():
    (ink,) = read_ink(DATA / "inkml_flat.inkml")
    assert (ink.label, ink.writer) == ("$x^2$", "w042")
    assert strokes_of(ink) == [[[10, 10], [12, 14], [15, 20], [20, 21]], [[30, 5], [32, 3]], [[40.5, 12.25]]]


def test_inkml_groups_contexts_differences_and_time_channel():
    first, second = read_ink(DATA / "inkml_groups.inkml")
    # X: 100, '10 -> 110, "1 -> v=11 -> 121, 4 (still ") -> v=15 -> 136; the penUp trace is skipped
    assert strokes_of(first) == [[[100, 200], [110, 205], [121, 210], [136, 213]], [[300, 200], [302, 199]]]
    np.testing.assert_allclose(first.times[0], [0.0, 0.01, 0.02, 0.03])
    np.testing.assert_allclose(first.times[1], [1.0, 1.01])
    assert (first.label, first.writer) == ("hi", "anna")
    assert strokes_of(second) == [[[5, 5], [6, -7], [8, 9]]] and second.times is None
    assert second.label == "!"


def test_inkml_time_units_in_seconds():
    doc = (
        b'<ink xmlns="http://www.w3.org/2003/InkML"><traceFormat><channel name="T" units="s"/>'
        b'<channel name="X"/><channel name="Y"/></traceFormat><trace>0.5 1 2, 0.75 3 4</trace></ink>'
    )
    (ink,) = read_ink(doc)
    assert times_of(ink) == [[0.5, 0.75]] and strokes_of(ink) == [[[1, 2], [3, 4]]]


def test_quickdraw_simplified_and_raw():
    first, second = read_ink(DATA / "quickdraw_simplified.ndjson")
    assert first.label == "cat" and strokes_of(first) == [[[0, 0], [10, 5], [20, 0]], [[5, 9]]]
    assert first.meta["countrycode"] == "US" and first.meta["key_id"] == "5136765138300928"
    assert first.times is None and second.meta["recognized"] is False
    (raw,) = read_ink(DATA / "quickdraw_raw.ndjson")
    assert strokes_of(raw) == [[[1.5, 4], [2.5, 5], [3.5, 6]], [[7, 8]]]
    assert times_of(raw) == [[0.0, 0.017, 0.04], [0.1]]  # milliseconds -> seconds


def test_own_json_fixture():
    first, second = read_ink(DATA / "vrnn_ink.json")
    assert strokes_of(first) == [[[0.1, 0.2], [0.30000000000000004, -1e-300]], [[5, 6]]]
    assert times_of(first) == [[0.0, 0.01], [0.5]]
    assert (first.label, first.writer, first.meta) == ("hi", "w1", {"source": "hand-made"})
    assert strokes_of(second) == [[[1e300, 2.5]]] and second.times is None


# ------------------------------------------------------------------- sketch-rnn
SEQUENCES = [
    [[0, 0, 0], [5, 3, 0], [2, -1, 1], [10, 0, 0], [1, 1, 1]],
    [[3, 4, 0], [-2, 2, 1]],
    [[7, 7, 1]],
]


@pytest.mark.parametrize("compressed", [False, True])
def test_sketch_rnn_npz_made_with_np_savez_reads(compressed):
    data = npz_bytes(
        compressed,
        train=object_array(SEQUENCES[:2]),
        valid=object_array(SEQUENCES[2:]),
        test=object_array(SEQUENCES[:1]),
    )
    inks = read_ink(data, name="cat.npz")
    assert len(inks) == 4
    assert [(i.meta["split"], i.meta["index"]) for i in inks] == [("train", 0), ("train", 1), ("valid", 0), ("test", 0)]
    assert all(i.label == "cat" for i in inks)
    for ink, sequence in zip(inks, SEQUENCES[:2] + SEQUENCES[2:] + SEQUENCES[:1], strict=True):
        want = Ink.from_offsets(np.asarray(sequence, dtype=np.float64))
        assert strokes_of(ink) == strokes_of(want)
    assert strokes_of(inks[0]) == [[[0, 0], [5, 3], [7, 2]], [[17, 2], [18, 3]]]


def test_sketch_rnn_equal_length_sequences_and_numeric_members():
    same = np.array([np.zeros((2, 3), np.int16), np.ones((2, 3), np.int16)], dtype=object)
    assert same.shape == (2, 2, 3)  # numpy makes a 3-D object array of ints of these
    inks = read_ink(npz_bytes(train=same), name="x.npz")
    assert [strokes_of(i) for i in inks] == [[[[0, 0], [0, 0]]], [[[1, 1]], [[2, 2]]]]
    numeric = read_ink(npz_bytes(train=np.ones((3, 4, 3), np.float32)), format="npz")
    assert len(numeric) == 3 and numeric[0].label is None


class _Boom:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_booby_trapped_pickle_is_refused_and_never_called(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    inside_array = np.empty(2, dtype=object)
    inside_array[0] = np.zeros((2, 3), np.int16)
    inside_array[1] = _Boom(marker)
    top_level = object_npy(pickle.dumps(_Boom(marker), protocol=2))
    traps = (npz_bytes(train=inside_array), zip_members(**{"train.npy": top_level}))
    assert all(b"system" in trap for trap in traps)
    calls = []  # record instead of running, should the reader ever resolve os.system
    monkeypatch.setattr(os, "system", lambda cmd: calls.append(cmd))
    monkeypatch.setattr(posix, "system", lambda cmd: calls.append(cmd))
    for data in traps:
        with pytest.raises(InkFormatError) as excinfo:
            read_ink(data, name="evil.npz")
        message = message_of(excinfo)
        assert message.startswith("evil.npz: train.npy") and "system" in message and "refused" in message
    assert calls == [] and not marker.exists()


def holding(element) -> np.ndarray:
    """A 1-element object array holding ``element`` as it is (``np.array`` would unpack it)."""
    array = np.empty(1, dtype=object)
    array[0] = element
    return array


PICKLE_CASES = [
    (pickle.dumps(holding("abc")), "a pickled str, not a numeric array"),
    (pickle.dumps(holding({"x": 1})), "a pickled dict, not a numeric array"),
    (pickle.dumps(holding(np.int16(3))), "a pickled numpy scalar, not a numeric array"),
    (pickle.dumps(object_array([[[1, 2, 3]]]).tolist()), "a pickled list, not a numeric array"),
    (pickle.dumps(holding(np.array(["abc"]))), "dtype 'U3' is refused"),
    (pickle.dumps(holding(np.zeros(2, dtype=[("a", "i2")]))), "is refused"),  # records
    (pickle.dumps(holding(np.array([1 + 2j]))), "dtype 'c16' is refused"),
    (b"cnumpy\nndarray\n(I5\ntR.", "not callable"),  # the ndarray stand-in may not be called
    (b"cnumpy.core.multiarray\n_reconstruct\n(I1\nI2\nI3\ntR.", "other than numpy.ndarray"),
    (b"ccollections\nOrderedDict\n)R.", "refused"),
    (b"cbuiltins\neval\n(S'1'\ntR.", "refused"),
    (b"\x80\x04", "refused pickle"),  # truncated
    # memo index 2**30: CPython's C unpickler would grow its memo array to 8 GiB here
    (b"\x80\x02K\x01r\x00\x00\x00\x40.", "a pickled int, not a numeric array"),
]


@pytest.mark.parametrize("payload, problem", PICKLE_CASES, ids=[problem for _, problem in PICKLE_CASES])
def test_pickles_other_than_numeric_arrays_are_refused(payload, problem):
    data = zip_members(**{"train.npy": object_npy(payload)})
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(data, format="npz", name="bad.npz")
    assert problem in message_of(excinfo)


def test_zip_bomb_is_refused_from_declared_sizes_before_inflating(monkeypatch):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train.npy", b"\0" * 3_000_000)
    assert len(bomb.getvalue()) < 100_000
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("inflated a member"))
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(bomb.getvalue(), name="bomb.npz", limits=Limits(max_bytes=1_000_000))
    assert "expand to 3,000,000 bytes" in message_of(excinfo)


def test_npz_structural_problems():
    cases = {
        b"PK\x03\x04 truncated": "not a valid .npz",
        zip_members(**{"other.npy": b"x"}): "no train.npy",
        zip_members(**{"train.npy": b"not an npy"}): "bad .npy header",
        npz_bytes(train=np.ones((2, 4), np.int16)): "shape (2, 4)",
        npz_bytes(train=np.array(["a", "b"])): "not numeric",
        npz_bytes(train=object_array([np.zeros((0, 3))])): "empty sequence",
        npz_bytes(train=object_array([[[1, 2, 3]]]).astype(object)[:0]): None,  # no sequences at all
        npz_bytes(train=np.array([[np.nan, 0, 1]])): "NaN",
    }
    for data, problem in cases.items():
        if problem is None:
            assert read_ink(data, format="npz") == []
            continue
        with pytest.raises(InkFormatError) as excinfo:
            read_ink(data, format="npz", name="d.npz")
        assert problem in message_of(excinfo), (problem, str(excinfo.value))


# ------------------------------------------------------------------- detection
@pytest.mark.parametrize(
    "filename, fmt",
    [
        ("iam_line.xml", "iam"),
        ("uji_v2_crlf.txt", "uji"),
        ("UJIpenchars-w07.txt", "uji"),
        ("inkml_flat.inkml", "inkml"),
        ("inkml_groups.inkml", "inkml"),
        ("quickdraw_simplified.ndjson", "ndjson"),
        ("quickdraw_raw.ndjson", "ndjson"),
        ("vrnn_ink.json", "json"),
        ("office_ink.inkml", "inkml"),
        ("windows_ink.inkml", "inkml"),
        ("notebook.xopp", "xournal"),
        ("old_notes.xoj", "xournal"),
        ("board.excalidraw", "excalidraw"),
        ("omniglot_drawing.txt", "omniglot"),
    ],
)
def test_detection_from_content_alone(filename, fmt):
    data = (DATA / filename).read_bytes()
    assert detect_format(data) == fmt
    assert detect_format(data, "upload.bin") == fmt
    assert len(read_ink(data)) >= 1


def test_detection_of_npz_ndjson_and_unknown_content():
    assert detect_format(npz_bytes(train=object_array(SEQUENCES))) == "npz"
    one_line_ndjson = (DATA / "quickdraw_raw.ndjson").read_bytes()
    assert detect_format(one_line_ndjson, "a.json") == "ndjson"  # a whole object on line 1
    assert detect_format(b'{\n  "format": "vrnn-ink"}') == "json"
    assert detect_format(b"<!-- a -->\n<?pi x?><inkml:ink xmlns:inkml='x'/>") == "inkml"
    assert detect_format(b"1 2 3", "lines.txt") == "uji"  # the name decides when content cannot
    with pytest.raises(InkFormatError, match=r"upload\.bin: cannot tell the ink format"):
        read_ink(b"\x00\x01\x02 junk", name="upload.bin")
    with pytest.raises(InkFormatError, match="neither InkML"):
        read_ink(b"<svg/>", name="pic.xml")


# ---------------------------------------------------------------- bad input
BAD_INPUTS = [
    # (data, format, substring of the message)
    (b"WORD a W01\nNUMSTROKES 2\nPOINTS 1 # 1 2\n", "uji", "WORD a at line 1: NUMSTROKES 2 but 1 POINTS lines"),
    (b"WORD a W01\nNUMSTROKES 1\nPOINTS 1 # 1 2\nPOINTS 1 # 3 4\n", "uji", "line 4: more POINTS lines"),
    (b"WORD a W01\nPOINTS 3 # 1 2 3 4\n", "uji", "line 2: POINTS 3 but 4 numbers follow"),
    (b"WORD a W01\nPOINTS 0 #\n", "uji", "line 2: empty stroke"),
    (b"WORD a W01\nPOINTS 1 # nan 2\n", "uji", "line 2: NaN or infinite"),
    (b"WORD a W01\nPOINTS 1 # 1e999 2\n", "uji", "line 2: NaN or infinite"),
    (b"WORD a W01\nPOINTS 1 # 1 x\n", "uji", "line 2: not a number: 'x'"),
    (b"WORD a W01\nNUMSTROKES 0\n", "uji", "no strokes"),
    (b"WORD a W01\nPOINTS 1 # 1 2\nFOO\n", "uji", "line 3: unexpected line"),
    (b"// only comments\n", "uji", "no WORD blocks"),
    (b"WORD \xff W01\n", "uji", "line 1: not UTF-8"),
    (b'.SEGMENT C 0 ? "a"\n.PEN_DOWN\n.PEN_UP\n', "uji", "empty stroke"),
    (b'.SEGMENT C 0 ? "a"\n.PEN_DOWN\n 1 2\n', "uji", ".PEN_DOWN without .PEN_UP"),
    (b"<WhiteboardCaptureSession><StrokeSet><Stroke>", "iam", "not well-formed"),
    (
        b"<WhiteboardCaptureSession><StrokeSet><Stroke></Stroke></StrokeSet></WhiteboardCaptureSession>",
        "iam",
        "Stroke 1: empty stroke",
    ),
    (
        b'<WhiteboardCaptureSession><StrokeSet><Stroke><Point x="NaN" y="1"/></Stroke></StrokeSet>'
        b"</WhiteboardCaptureSession>",
        "iam",
        "Stroke 1: NaN or infinite",
    ),
    (
        b'<WhiteboardCaptureSession><StrokeSet><Stroke><Point x="1" y="1" time="0"/><Point x="1" y="1"/>'
        b"</Stroke></StrokeSet></WhiteboardCaptureSession>",
        "iam",
        "some Points have a time",
    ),
    (
        b'<WhiteboardCaptureSession><StrokeSet><Stroke><Point x="1"/></Stroke></StrokeSet></WhiteboardCaptureSession>',
        "iam",
        "Point without x or y",
    ),
    (
        b'<WhiteboardCaptureSession><StrokeSet><Point x="1" y="1"/></StrokeSet></WhiteboardCaptureSession>',
        "iam",
        "Point outside a Stroke",
    ),
    (b"<ink><trace>1 2, 3</trace></ink>", "inkml", "trace 1: point 2 has 1 values for 2 channels"),
    (b"<ink><trace>  </trace></ink>", "inkml", "trace 1: empty trace"),
    (b'<ink><trace>1 2, "3 "4</trace></ink>', "inkml", "second difference in channel X needs two"),
    (b"<ink><trace>'1 2</trace></ink>", "inkml", "first difference in channel X with no previous point"),
    (b"<ink><trace>1 2, 3 x</trace></ink>", "inkml", "unexpected characters 'x'"),
    (b"<ink><trace>1 2, 3 ?</trace></ink>", "inkml", "value '?' is not supported"),
    (b"<ink><trace>1 2, inf 3</trace></ink>", "inkml", "unexpected characters"),
    (b"<ink><trace>1 2, 1e999 3</trace></ink>", "inkml", "NaN or infinite"),
    (b'<ink><trace contextRef="#nope">1 2</trace></ink>', "inkml", "cannot resolve '#nope'"),
    (b'<ink><traceFormat><channel name="X"/></traceFormat><trace>1</trace></ink>', "inkml", "needs regular channels"),
    (b"<ink><annotation>no traces</annotation></ink>", "inkml", "no pen-down trace"),
    (
        b'<ink><definitions><context xml:id="a" contextRef="#b"/><context xml:id="b" contextRef="#a"/>'
        b'</definitions><trace contextRef="#a">1 2</trace></ink>',
        "inkml",
        "context: reference chain too long or circular",
    ),
    (b'<ink><traceFormat xml:id="f" href="#f"/><trace>1 2</trace></ink>', "inkml", "circular"),
    (b'{"drawing": [[[1, 2], [3]]]}', "ndjson", "line 1, stroke 1: coordinate lists of different lengths"),
    (b'{"drawing": [[[], []]]}', "ndjson", "line 1, stroke 1: empty stroke"),
    (b'{"drawing": [[["a"], ["b"]]]}', "ndjson", "coordinates must be numbers"),
    (b'{"drawing": [[[1], [NaN]]]}', "ndjson", "NaN or infinite"),
    (b'{"drawing": [[[1], [2], [0]], [[1], [2]]]}', "ndjson", "some strokes have times"),
    (b'{"drawing": [[[0], [0]]]}\n{"drawing": [[[1], [2]]], ', "ndjson", "line 2: invalid JSON"),
    (b'{"word": "x"}', "ndjson", "no 'drawing' list"),
    (b'{"format": "vrnn-ink", "version": 2, "inks": []}', "json", "version 2 is not supported"),
    (b'{"format": "other"}', "json", "not a vrnn-ink document"),
    (b'{"format": "vrnn-ink", "version": 1, "inks": [{"strokes": [[]]}]}', "json", "inks[0].strokes[0]: must be"),
    (b'{"format": "vrnn-ink", "version": 1, "inks": [{"strokes": [[[1, 2, 3]]]}]}', "json", "[x, y] pairs"),
    (
        b'{"format": "vrnn-ink", "version": 1, "inks": [{"strokes": [[[1, 2]]], "times": [[1, 2]]}]}',
        "json",
        "inks[0]: stroke 0: 2 times for 1 points",
    ),
    (
        b'{"format": "vrnn-ink", "version": 1, "inks": [{"strokes": [[[1, 2]]], "label": 5}]}',
        "json",
        "'label' must be a string",
    ),
    (b'{"format": "vrnn-ink", "version": 1,\n "inks": [}', "json", "line 2: invalid JSON"),
    (b"[" * 100_000, "json", "nested too deeply"),
]


@pytest.mark.parametrize("data, fmt, problem", BAD_INPUTS, ids=[f"{fmt}: {problem}" for _, fmt, problem in BAD_INPUTS])
def test_bad_input_raises_one_line_error_naming_file_and_place(data, fmt, problem):
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(data, format=fmt, name="sample.file")
    message = message_of(excinfo)
    assert message.startswith("sample.file: ")
    assert problem in message, message


ENTITY_BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<ROOT><annotation type="truth">&lol3;</annotation></ROOT>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE ROOT [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ROOT><annotation type="truth">&xxe;</annotation></ROOT>"""


@pytest.mark.parametrize("root, fmt", [(b"ink", "inkml"), (b"WhiteboardCaptureSession", "iam")])
@pytest.mark.parametrize("document", [ENTITY_BOMB, EXTERNAL_ENTITY])
def test_xml_entities_are_refused(document, root, fmt):
    data = document.replace(b"ROOT", root)
    assert detect_format(data) == fmt
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(data, name="bomb.xml")
    assert "entity declarations are refused" in message_of(excinfo)


def test_xml_element_count_is_bounded(monkeypatch):
    monkeypatch.setattr(inkml, "_MAX_ELEMENTS", 50)
    with pytest.raises(InkFormatError, match="x.inkml: XML: more than 50 elements"):
        read_ink(b"<ink>" + b"<a/>" * 60 + b"<trace>1 2</trace></ink>", name="x.inkml")
    assert len(read_ink(b"<ink>" + b"<a/>" * 40 + b"<trace>1 2</trace></ink>")) == 1


@pytest.mark.parametrize("fmt", READ_FORMATS)
def test_binary_junk_and_truncation_raise_ink_format_error(fmt):
    junk = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(InkFormatError):
        read_ink(junk, format=fmt, name="junk")
    sample = {
        "iam": "iam_line.xml",
        "uji": "uji_v2_crlf.txt",
        "inkml": "inkml_groups.inkml",
        "ndjson": "quickdraw_simplified.ndjson",
        "json": "vrnn_ink.json",
        "xournal": "notebook.xopp",
        "excalidraw": "board.excalidraw",
        "omniglot": "omniglot_drawing.txt",
    }.get(fmt)
    data = (DATA / sample).read_bytes() if sample else npz_bytes(train=object_array(SEQUENCES))
    with pytest.raises(InkFormatError):
        read_ink(data[: len(data) // 2 - 1], format=fmt, name="cut")


def test_paths_that_cannot_be_read(tmp_path):
    with pytest.raises(InkFormatError, match="cannot read"):
        read_ink(tmp_path / "missing.json")
    with pytest.raises(InkFormatError, match="not a regular file"):
        read_ink(tmp_path)
    with pytest.raises(ValueError, match="unknown ink format"):
        read_ink(b"x", format="pdf")
    with pytest.raises(TypeError):
        read_ink(12345)


# ------------------------------------------------------------------- limits
def test_size_limit_is_checked_before_parsing(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"WORD a W01\n" + b"POINTS 1 # 1 2\n" * 1000)
    limits = Limits(max_bytes=1000)
    for source in (big, big.read_bytes(), io.BytesIO(big.read_bytes())):
        with pytest.raises(InkFormatError, match=r"over the limit of 1,000 \(Limits.max_bytes\)"):
            read_ink(source, limits=limits)
    assert len(read_ink(big)) == 1  # fine under the default limits


def test_point_and_ink_limits():
    text = b"WORD a W01\nPOINTS 3 # 1 2 3 4 5 6\nWORD b W01\nPOINTS 3 # 1 2 3 4 5 6\n"
    with pytest.raises(InkFormatError, match=r"line 4: more than 5 points \(Limits.max_points\)"):
        read_ink(text, format="uji", limits=Limits(max_points=5))
    with pytest.raises(InkFormatError, match=r"more than 1 inks \(Limits.max_inks\)"):
        read_ink(text, format="uji", limits=Limits(max_inks=1))
    assert len(read_ink(text, format="uji", limits=Limits(max_points=6, max_inks=2))) == 2
    with pytest.raises(ValueError):
        Limits(max_bytes=0)


# ------------------------------------------------------------------ writing
TRICKY = [0.1, 1 / 3, -0.0, 5e-324, 1.7976931348623157e308, 2.0**53 + 2, -123456.789e-10, 0.30000000000000004]


def test_json_round_trip_is_bit_exact(tmp_path):
    inks = [
        Ink(
            strokes=[np.array([TRICKY, TRICKY[::-1]]).T, np.array([[1.5, -2.5]])],
            times=[np.array(TRICKY) / 7, np.array([1e-9])],
            label='ä <&> "q"\n',
            writer="W01",
            meta={"split": "train", "index": 3, "ok": True, "dropped": object()},
        ),
        Ink(strokes=[np.array([[0.0, 0.0]])]),
        Ink(strokes=[]),  # our own format round-trips an empty ink
    ]
    path = tmp_path / "out.json"
    write_ink(inks, path)
    stream = io.BytesIO()
    write_ink(inks, stream, format="json")
    assert stream.getvalue() == path.read_bytes() == ink_to_json_bytes(inks)
    for back in (read_ink(path), read_ink(stream.getvalue()), read_ink(io.BytesIO(stream.getvalue()))):
        assert len(back) == len(inks)
        for got, want in zip(back, inks, strict=True):
            assert len(got.strokes) == len(want.strokes)
            for a, b in zip(got.strokes, want.strokes, strict=True):
                assert a.dtype == np.float64 and a.tobytes() == b.tobytes()
            assert (got.times is None) == (want.times is None)
            for a, b in zip(got.times or [], want.times or [], strict=True):
                assert a.tobytes() == b.tobytes()
            assert (got.label, got.writer) == (want.label, want.writer)
    assert back[0].meta == {"split": "train", "index": 3, "ok": True}
    assert read_ink(ink_to_json_bytes([])) == []
    (odd,) = read_ink(ink_to_json_bytes(Ink(strokes=[np.zeros((1, 2))], label="\ud800 lone surrogate")))
    assert odd.label == "\ud800 lone surrogate"
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left nothing behind


def test_written_json_reads_back_through_every_source_kind_and_detection():
    ink = read_ink(DATA / "iam_line.xml")[0]
    (back,) = read_ink(ink_to_json_bytes(ink), name="download.json")
    assert strokes_of(back) == strokes_of(ink) and times_of(back) == times_of(ink)


def _svg_points(path_data: str) -> np.ndarray:
    return np.array([float(v) for v in re.findall(r"-?[\d.]+(?:e[-+]?\d+)?", path_data)]).reshape(-1, 2)


def test_svg_has_one_path_per_stroke_and_a_fitting_viewbox(tmp_path):
    first = Ink(strokes=[np.array([[100.0, 50.0], [140.0, 90.0]]), np.array([[120.0, 70.0]])], label="a<b&c")
    second = Ink(strokes=[np.array([[0.0, 0.0], [10.0, 5.0], [20.0, 40.0]])])
    svg = ink_to_svg([first, second])
    root = ElementTree.fromstring(svg)
    ns = {"s": "http://www.w3.org/2000/svg"}
    groups = root.findall("s:g/s:g", ns)
    assert [len(g.findall("s:path", ns)) for g in groups] == [2, 1]
    assert groups[0].find("s:title", ns).text == "a<b&c"
    x0, y0, width, height = map(float, root.get("viewBox").split())
    ink_points = [np.concatenate([_svg_points(p.get("d")) for p in g.findall("s:path", ns)]) for g in groups]
    for points in ink_points:
        assert (points[:, 0] >= x0).all() and (points[:, 0] <= x0 + width).all()
        assert (points[:, 1] >= y0).all() and (points[:, 1] <= y0 + height).all()
    assert ink_points[1][:, 1].min() > ink_points[0][:, 1].max()  # stacked top to bottom
    np.testing.assert_allclose(np.ptp(ink_points[0], axis=0), [40, 40])  # shapes kept, only moved
    assert groups[0].findall("s:path", ns)[1].get("d").endswith("l0 0")  # a dot
    tiny = ElementTree.fromstring(ink_to_svg(Ink(strokes=[np.array([[0.001, 0.002], [0.003, 0.0025]])])))
    assert float(tiny.get("viewBox").split()[2]) < 0.01  # the view fits small coordinates too
    assert ElementTree.fromstring(ink_to_svg([])).get("viewBox")
    out = tmp_path / "ink.svg"
    write_ink([first, second], out, format="svg")
    assert out.read_text() == svg
    with pytest.raises(ValueError, match="unknown output format"):
        write_ink([first], io.BytesIO(), format="png")


# ----------------------------------------------- InkML as Office / Windows Ink write it
def test_office_inkml_contexts_himetric_pressure_and_highlighter():
    (ink,) = read_ink(DATA / "office_ink.inkml")
    # himetric (cm at 1000 per cm) -> mm; F is pressure, never a coordinate; the maskPen trace is left out
    assert ink.meta["units"] == "mm"
    np.testing.assert_allclose(ink.strokes[0], [[10, 20], [11, 20.5], [12.5, 20.75]])
    # ' and " differences with a context: X 3000, '100, "0 -> 3100, 3200; Y 2000, '0, "10 -> 2000, 2010
    np.testing.assert_allclose(ink.strokes[1], [[30, 20], [31, 20], [32, 20.1]])
    np.testing.assert_allclose(ink.pressure[0], np.array([16384, 32767, 8192]) / 32767)
    np.testing.assert_allclose(ink.pressure[1], [16384 / 32767] * 3)
    assert len(ink.strokes) == 2 and ink.times is None


def test_windows_ink_xyt_with_inksource_reference_and_inherited_context():
    (ink,) = read_ink(DATA / "windows_ink.inkml")
    assert ink.label == "hi" and ink.pressure is None
    np.testing.assert_allclose(ink.strokes[0], [[5, 10], [5.2, 10.4], [5.6, 11]])  # himetric -> mm
    np.testing.assert_allclose(ink.strokes[1], [[9, 10], [9.5, 10.2], [10, 10.45]])
    np.testing.assert_allclose(np.concatenate(ink.times), [0, 0.008, 0.016, 0.4, 0.408, 0.416])


OFFICE_BODY = (
    '<{p}definitions><{p}context xml:id="ctx0"><{p}inkSource xml:id="src">'
    '<{p}traceFormat><{p}channel name="F" type="integer" max="1000"/><{p}channel name="X" type="integer"/>'
    '<{p}channel name="Y" type="integer"/></{p}traceFormat></{p}inkSource></{p}context></{p}definitions>'
    '<{p}trace contextRef="#ctx0">500 10 20, 250 11 22</{p}trace>'
)


@pytest.mark.parametrize(
    "root",
    [
        '<inkml:ink xmlns:inkml="http://www.w3.org/2003/InkML">{body}</inkml:ink>',
        '<ink xmlns="http://www.w3.org/2003/InkML">{body}</ink>',
        "<ink>{body}</ink>",
    ],
    ids=["inkml-prefix", "default-namespace", "no-namespace"],
)
def test_channels_are_mapped_by_name_with_any_namespace_style(root):
    prefix = "inkml:" if "inkml:ink" in root else ""
    doc = root.format(body=OFFICE_BODY.format(p=prefix)).encode()
    (ink,) = read_ink(doc, name="doc.inkml")
    assert strokes_of(ink) == [[[10, 20], [11, 22]]]  # F comes first here and is still not a coordinate
    np.testing.assert_allclose(ink.pressure[0], [0.5, 0.25])
    assert "units" not in ink.meta  # no length unit declared: coordinates as written


def test_inkml_channel_units_and_resolutions():
    doc = (
        b'<ink><definitions><inkSource xml:id="s"><traceFormat xml:id="f">'
        b'<channel name="X" units="in"/><channel name="Y" units="mm"/><channel name="T" units="dev"/></traceFormat>'
        b'<channelProperties><channelProperty channel="X" name="resolution" value="100" units="1/in"/>'
        b'<channelProperty channel="T" name="resolution" value="200" units="1/s"/></channelProperties>'
        b'</inkSource><context xml:id="c" inkSourceRef="#s"/><context xml:id="g" traceFormatRef="#f"/></definitions>'
        b'<trace contextRef="#c">100 2 0, 200 3 100</trace><trace contextRef="#g">1 2 1000</trace></ink>'
    )
    (ink,) = read_ink(doc)
    np.testing.assert_allclose(ink.strokes[0], [[25.4, 2], [50.8, 3]])  # 100 per inch -> mm; Y already mm
    np.testing.assert_allclose(ink.times[0], [0, 0.5])  # 200 ticks per second
    # traceFormatRef without the inkSource: no resolution, so X is inches, T "dev" is Office's ms
    np.testing.assert_allclose(ink.strokes[1], [[25.4, 2]])
    np.testing.assert_allclose(ink.times[1], [1.0])


INKML_BAD = [
    (b'<ink><trace contextRef="#ctx0">1 2 3</trace></ink>', "cannot resolve '#ctx0'"),
    (
        b'<ink><definitions><context xml:id="c" inkSourceRef="#gone"/></definitions>'
        b'<trace contextRef="#c">1 2</trace></ink>',
        "inkSource reference: cannot resolve '#gone'",
    ),
    (
        b'<ink><definitions><context xml:id="c"><inkSource><traceFormat><channel name="X"/><channel name="Y"/>'
        b'<channel name="F"/></traceFormat></inkSource></context></definitions>'
        b'<trace contextRef="#c">1 2 3, 4 5</trace></ink>',
        "trace 1: point 2 has 2 values for 3 channels",
    ),
    (b'<ink><trace brushRef="#nobrush">1 2</trace></ink>', "brush reference: cannot resolve '#nobrush'"),
    (b'<ink><traceFormat><channel name="X"/><channel name="Y"/><channel name="T" units="weeks"/></traceFormat>'
     b"<trace>1 2 3</trace></ink>", "unknown time units 'weeks'"),
]  # fmt: skip


@pytest.mark.parametrize("data, problem", INKML_BAD, ids=[problem for _, problem in INKML_BAD])
def test_inkml_reference_and_channel_errors(data, problem):
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(data, name="office.inkml")
    message = message_of(excinfo)
    assert message.startswith("office.inkml: ") and problem in message, message


# ----------------------------------------------------------------- Xournal++
def test_xournalpp_pages_pen_strokes_and_pressure_from_widths():
    first, third = read_ink(DATA / "notebook.xopp")
    assert (first.meta["page"], third.meta["page"]) == (1, 3)  # page 2 has no pen stroke
    assert first.meta["page_width"] == pytest.approx(595.27559055)
    # layer 1's pen stroke, then layer 2's; highlighter, eraser and text are left out
    assert strokes_of(first) == [[[72.5, 100], [74, 102.25], [77, 105]], [[80, 100], [81, 99.5]]]
    np.testing.assert_allclose(first.pressure[0], np.array([1.2, 1.41, 0.705]) / 1.41)
    np.testing.assert_allclose(first.pressure[1], [1, 1])  # no pressure recorded: drawn at the nominal width
    assert third.pressure is None and first.times is None and len(third.strokes) == 1


def test_old_xournal_plain_xml_with_a_width_per_segment():
    (ink,) = read_ink(DATA / "old_notes.xoj")
    assert strokes_of(ink)[0] == [[10, 20], [12, 21], [15, 23]]
    np.testing.assert_allclose(ink.pressure[0], np.array([1.0, 0.5, 0.5]) / 1.41)  # n - 1 widths: last repeated
    gz = gzip.compress((DATA / "old_notes.xoj").read_bytes())
    assert strokes_of(read_ink(gz, name="old.xoj")[0]) == strokes_of(ink)  # .xoj may be gzip too


def test_xournalpp_zip_container_and_multi_member_gzip():
    xml = gzip.decompress((DATA / "notebook.xopp").read_bytes())
    container = zip_members(mimetype=b"application/xournal++", **{"content.xml": xml})
    assert detect_format(container, "n.xopp") == detect_format(container) == "xournal"
    assert [strokes_of(i) for i in read_ink(container)] == [strokes_of(i) for i in read_ink(DATA / "notebook.xopp")]
    split = gzip.compress(xml[:100]) + gzip.compress(xml[100:])
    assert len(read_ink(split, name="n.xopp")) == 2


def _xopp(strokes: str) -> bytes:
    return gzip.compress(f'<xournal><page width="10" height="10"><layer>{strokes}</layer></page></xournal>'.encode())


XOURNAL_BAD = [
    (_xopp('<stroke tool="pen" width="1">1 2 3</stroke>'), "page 1, stroke 1: odd number of coordinates (3)"),
    (_xopp('<stroke tool="pen" width="1">1 2 nan 4</stroke>'), "page 1, stroke 1: NaN or infinite"),
    (_xopp('<stroke tool="pen" width="1">1 2 x 4</stroke>'), "page 1, stroke 1: not a number: 'x'"),
    (_xopp('<stroke tool="pen" width="1"> </stroke>'), "stroke with no coordinates"),
    (_xopp('<stroke tool="pen">1 2</stroke>'), "stroke without a width"),
    (_xopp('<stroke tool="pen" width="1 nan">1 2</stroke>'), "page 1, stroke 1 width: NaN"),
    (_xopp('<stroke tool="highlighter" width="1">1 2</stroke>'), "no pen strokes on any page"),
    (_xopp("")[: len(_xopp("")) - 6], "truncated gzip data"),
    (b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"garbage!", "corrupt gzip data"),
    (gzip.compress(b"<svg/>"), "root element is <svg>, not <xournal>"),
    (gzip.compress(b"<xournal><page>"), "not well-formed"),
    (zip_members(**{"other.xml": b"x"}), "no content.xml member"),
]


@pytest.mark.parametrize("data, problem", XOURNAL_BAD, ids=[problem for _, problem in XOURNAL_BAD])
def test_xournal_errors_are_one_line_and_name_the_place(data, problem):
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(data, format="xournal", name="notes.xopp")
    message = message_of(excinfo)
    assert message.startswith("notes.xopp: ") and problem in message, message


def test_gzip_bomb_is_refused_while_inflating():
    bomb = gzip.compress(b"<xournal>" + b" " * 30_000_000 + b"</xournal>")
    assert len(bomb) < 100_000
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(bomb, name="bomb.xopp")
    assert "inflates to more than 12,000,000 bytes (Limits.max_unpacked_bytes)" in message_of(excinfo)
    small = Limits(max_unpacked_bytes=500)
    with pytest.raises(InkFormatError, match="more than 500 bytes"):
        read_ink(DATA / "notebook.xopp", limits=small)
    assert TRAINING_LIMITS.max_unpacked_bytes > DEFAULT_LIMITS.max_unpacked_bytes
    container = zip_members(**{"content.xml": b" " * 3000})
    with pytest.raises(InkFormatError, match=r"content.xml: expands to 3,000 bytes"):
        read_ink(container, name="c.xopp", limits=Limits(max_unpacked_bytes=1000))


# ----------------------------------------------------------------- Excalidraw
def test_excalidraw_freedraw_offsets_rotation_pressure_and_skipped_elements():
    (ink,) = read_ink(DATA / "board.excalidraw")
    assert ink.meta["source"] == "excalidraw" and ink.times is None
    # offsets made absolute; the deleted freedraw, the rectangle and the text are left out
    assert strokes_of(ink)[0] == [[100, 50], [110, 55], [120, 60], [130, 50]]
    # 90 degrees clockwise about the centre of the points' box (x + 0, y + 0 here, offsets -10..10)
    np.testing.assert_allclose(ink.strokes[1], [[200, 40], [200, 50], [200, 60]], atol=1e-9)
    assert ink.pressure is None  # the second stroke simulates pressure


def _scene(*elements, kind="excalidraw") -> bytes:
    return json.dumps({"type": kind, "version": 2, "elements": list(elements)}).encode()


def _freedraw(**fields) -> dict:
    element = {"type": "freedraw", "id": "e", "x": 0, "y": 0, "angle": 0, "points": [[0, 0], [1, 1]],
               "pressures": [], "simulatePressure": True, "isDeleted": False}  # fmt: skip
    element.update(fields)
    return element


def test_excalidraw_rotation_centre_is_the_points_box_not_x_plus_half_width():
    # points run from -20 to 0: the centre is x - 10, where x + width / 2 would be x + 10
    element = _freedraw(x=100, y=0, width=20, height=0, angle=np.pi, points=[[-20, 0], [0, 0]])
    (ink,) = read_ink(_scene(element), name="r.excalidraw")
    np.testing.assert_allclose(ink.strokes[0], [[100, 0], [80, 0]], atol=1e-9)


def test_excalidraw_pressures_and_frames():
    a = _freedraw(id="a", points=[[0, 0], [1, 0]], pressures=[0.2, 0.4], simulatePressure=False)
    b = _freedraw(id="b", x=50, frameId="f1", pressures=[0.5, 0.5], simulatePressure=False)
    c = _freedraw(id="c", x=90, frameId="f2")
    d = _freedraw(id="d", x=70, frameId="f1", pressures=[1, 1], simulatePressure=False)
    frames = [
        {"type": "frame", "id": "f1", "name": "Page 1", "x": 0, "y": 0},
        {"type": "frame", "id": "f2", "name": None, "x": 0, "y": 0},
        {"type": "frame", "id": "gone", "name": "deleted", "isDeleted": True},
    ]
    loose, f1, f2 = read_ink(_scene(a, b, c, d, *frames), name="frames.excalidraw")
    assert (loose.meta.get("frame"), f1.meta["frame"], f2.meta["frame"]) == (None, "Page 1", "f2")
    assert [s[0, 0] for s in f1.strokes] == [50, 70]  # element order within the frame
    np.testing.assert_allclose(loose.pressure[0], [0.2, 0.4])
    assert f2.pressure is None and f1.pressure is not None
    e = _freedraw(id="e", frameId="gone")  # a deleted frame holds nothing: the stroke is loose
    assert len(read_ink(_scene(e), name="x.excalidraw")) == 1
    clip = _scene(a, kind="excalidraw/clipboard")
    assert detect_format(clip) == "excalidraw" and len(read_ink(clip)) == 1


EXCALIDRAW_BAD = [
    (_scene(_freedraw(points={"0": [0, 0]})), "elements[0] (id 'e'): 'points' must be a non-empty list"),
    (_scene(_freedraw(points=[])), "'points' must be a non-empty list"),
    (_scene(_freedraw(points=[[0, 0], [1]])), "'points' must be a list of [x, y] pairs"),
    (_scene(_freedraw(points=[[0, 0], ["a", "b"]])), "point coordinates must be numbers"),
    (_scene(_freedraw(points=[[0, 0], [float("nan"), 1]])), "NaN or infinite"),
    (_scene(_freedraw(x=None)), "'x' must be a finite number"),
    (_scene(_freedraw(angle="90")), "'angle' must be a finite number"),
    (_scene(_freedraw(pressures=[0.5])), "'pressures' must be a list of 2 numbers"),
    (_scene(_freedraw(pressures=[0.5, "hard"])), "'pressures' must hold numbers"),
    (_scene({"type": "rectangle"}), "no freedraw elements"),
    (_scene(_freedraw(isDeleted=True)), "no freedraw elements"),
    (_scene("text"), "elements[0]: want an object"),
    (b'{"type": "excalidraw", "elements": {}}', "'elements' must be a list"),
    (b'{"type": "excalidraw", "elements": [', "invalid JSON"),
    (b'{"type": "other"}', "not an Excalidraw scene"),
]


@pytest.mark.parametrize("data, problem", EXCALIDRAW_BAD, ids=[problem for _, problem in EXCALIDRAW_BAD])
def test_excalidraw_errors_are_one_line_and_name_the_element(data, problem):
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(data, format="excalidraw", name="board.excalidraw")
    message = message_of(excinfo)
    assert message.startswith("board.excalidraw: ") and problem in message, message


# ------------------------------------------------------------------ Omniglot
def test_omniglot_drawing_flips_y_and_converts_milliseconds():
    (ink,) = read_ink(DATA / "omniglot_drawing.txt")
    assert strokes_of(ink)[0] == [[68.75, 25.859438], [68.75, 27.859438], [68.75, 31.859438]]
    assert [len(s) for s in ink.strokes] == [3, 3, 1]
    np.testing.assert_allclose(np.concatenate(ink.times), [0, 0.14, 0.16, 1.152, 1.312, 1.412, 2.0])
    assert ink.writer is None and ink.label is None  # a bare file name tells no alphabet
    (named,) = read_ink((DATA / "omniglot_drawing.txt").read_bytes(), name="0683_07.txt")
    assert (named.meta["image_id"], named.meta["drawer"], named.writer) == ("0683", 7, None)


def _omniglot_zip(**extra: bytes) -> bytes:
    drawing = (DATA / "omniglot_drawing.txt").read_bytes()
    members = {
        "images_background/Latin/character02/0684_07.txt": drawing,
        "images_background/Greek/character01/0394_07.txt": drawing,
        "images_background/Latin/character02/0684_11.txt": drawing,
        "__MACOSX/images_background/Latin/._0684_07.txt": b"\x00\x05\x16\x07junk",
        "images_background/.DS_Store": b"\x00\x00\x00\x01Bud1",
    }
    members.update(extra)
    return zip_members(**members)


def test_omniglot_zip_labels_writers_and_skipped_members():
    data = _omniglot_zip()
    assert detect_format(data) == detect_format(data, "strokes.zip") == "omniglot"
    inks = read_ink(data, name="strokes.zip")
    assert [i.label for i in inks] == ["Latin/character02", "Greek/character01", "Latin/character02"]
    # drawer numbers are per alphabet: Latin 07 and Greek 07 are not known to be one person
    assert [i.writer for i in inks] == ["omniglot-Latin-07", "omniglot-Greek-07", "omniglot-Latin-11"]
    assert inks[0].meta["letter"] == "b" and "letter" not in inks[1].meta
    assert inks[0].meta["subset"] == "images_background" and inks[0].meta["character"] == 2


OMNIGLOT_BAD = [
    (b"START\n1,2,0\nBREAK\n3,4\nBREAK\n", "d.txt: line 4: want x,y,t (2 values), got '3,4'"),
    (b"START\n1,2,0\n3,nan,5\nBREAK\n", "d.txt: line 3: NaN or infinite"),
    (b"START\n1,2,0\n3,x,5\nBREAK\n", "d.txt: line 3: not a number: 'x'"),
    (b"START\nBREAK\n", "d.txt: line 2: empty stroke"),
    (b"START\n1,2,0\nBREAK\nBREAK\n", "d.txt: line 4: empty stroke"),
    (b"START\n1,2,0\n3,4,5\n", "d.txt: line 3: the drawing does not end with BREAK"),
    (b"START\n1,2,0\nSTART\n", "d.txt: line 3: second START"),
    (b"1,2,0\nBREAK\n", "d.txt: line 1: expected START"),
    (b"START\n", "no strokes"),
    (b"", "no START line"),
]


@pytest.mark.parametrize("data, problem", OMNIGLOT_BAD, ids=[problem for _, problem in OMNIGLOT_BAD])
def test_omniglot_errors_name_the_line(data, problem):
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(data, format="omniglot", name="d.txt")
    assert problem in message_of(excinfo)


def test_omniglot_zip_errors_and_limits(monkeypatch):
    bad_member = _omniglot_zip(**{"images_background/Latin/character03/0685_01.txt": b"START\n1,2\nBREAK\n"})
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(bad_member, name="s.zip")
    assert "s.zip: images_background/Latin/character03/0685_01.txt: line 2: want x,y,t" in message_of(excinfo)
    with pytest.raises(InkFormatError, match="no Omniglot .txt drawings"):
        read_ink(zip_members(**{"readme.md": b"hi"}), format="omniglot", name="s.zip")
    with pytest.raises(InkFormatError, match="not a valid zip archive"):
        read_ink(b"PK\x03\x04 broken", name="s.zip")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a/Latin/character01/0683_01.txt", b"START\n" + b"1,2,3\n" * 3_000_000)
    assert len(bomb.getvalue()) < 200_000
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *a, **k: pytest.fail("inflated a member"))
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(bomb.getvalue(), name="bomb.zip")
    assert "expand to 18,000,006 bytes, over 12,000,000 (Limits.max_unpacked_bytes)" in message_of(excinfo)
    monkeypatch.undo()
    monkeypatch.setattr(omniglot, "_MAX_MEMBERS", 3)
    with pytest.raises(InkFormatError, match="5 members, more than 3"):
        read_ink(_omniglot_zip(), name="many.zip")


@pytest.fixture
def omniglot_zip():
    path = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "omniglot" / "strokes_background_small1.zip"
    if not path.is_file():
        pytest.skip(f"Omniglot strokes not found at {path} (../shared/data is not beside this checkout)")
    return path


def test_real_omniglot_strokes_zip(omniglot_zip):
    inks = read_ink(omniglot_zip)
    assert len(inks) == 2720 and sum(i.num_points for i in inks) == 375_709
    alphabets = {i.meta["alphabet"] for i in inks}
    assert alphabets == {"Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"}
    assert len({i.writer for i in inks}) == 5 * 20
    latin = [i for i in inks if i.meta["alphabet"] == "Latin"]
    assert len(latin) == 26 * 20 and len({i.writer for i in latin}) == 20
    assert all(i.times[0][0] == 0 for i in inks)  # seconds since the drawing began (as written: 7 of
    steps = np.concatenate([np.diff(np.concatenate(i.times)) for i in inks])  # 2,720 go back by ~20 ms once)
    assert (steps < 0).sum() <= 10 and 1 < np.median([np.concatenate(i.times)[-1] for i in inks]) < 10

    def letters(letter):
        return [i for i in latin if i.meta["letter"] == letter]

    def aspect(ink):  # height over width
        x0, y0, x1, y1 = ink.bounds()
        return (y1 - y0) / max(x1 - x0, 1e-9)

    # printed lowercase, y pointing down: 'l' is tall and thin, 'w' and 'm' wide
    assert np.median([aspect(i) for i in letters("l")]) > 3
    assert np.median([aspect(i) for i in letters("w")]) < 1 and np.median([aspect(i) for i in letters("m")]) < 1
    # the dot of an 'i' is its last stroke, above (smaller y) the stem
    dotted = [i for i in letters("i") if len(i.strokes) >= 2]
    above = [i.strokes[-1][:, 1].max() < i.strokes[0][:, 1].min() for i in dotted]
    assert len(dotted) >= 15 and np.mean(above) > 0.9
    # 'p' descends: its stem reaches further down than its bowl; 'b' rises above its bowl
    for letter, descends in (("p", True), ("b", False)):
        tops = []
        for ink in letters(letter):
            y = ink.points[:, 1]
            x = ink.points[:, 0]
            left = x < np.median(x)  # the stem, for both
            tops.append(y[left].max() > y[~left].max() if descends else y[left].min() < y[~left].min())
        assert np.mean(tops) > 0.8, letter


def test_new_formats_are_detected_by_name_when_content_cannot_tell():
    assert detect_format(b'{"elements": [], "type": "excalidraw"}') == "excalidraw"
    assert detect_format(b'{"elements": []}', "board.excalidraw") == "excalidraw"
    assert detect_format(b"<xournal/>", "n.xml") == detect_format(b"<MrWriter/>") == "xournal"
    assert detect_format(b"<?xml version='1.0'?><page/>", "n.xoj") == "xournal"
    assert detect_format(b"\x1f\x8b\x08\x00broken", "anything.bin") == "xournal"
    assert detect_format(b"PK\x03\x04 broken", "strokes.zip") == "omniglot"
    assert detect_format(b"PK\x03\x04 broken", "notes.xopp") == "xournal"
    assert detect_format(b"PK\x03\x04 broken", "cat.npz") == "npz"
    assert detect_format(b"\nSTART\n1,2,3\nBREAK\n", "0683_01.txt") == "omniglot"
    with pytest.raises(InkFormatError, match=r"board\.excalidraw: JSON: not an Excalidraw scene"):
        read_ink(b'{"elements": []}', name="board.excalidraw")
