"""Reading and writing ink files: every format, detection, limits and hostile input."""

from __future__ import annotations

import io
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
    Limits,
    detect_format,
    ink_to_json_bytes,
    ink_to_svg,
    inkml,
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
