"""Fuzzing the ink readers: hostile bytes give valid inks or InkFormatError, promptly.

Seeds are the hand-made files in tests/data/formats plus sketch-rnn archives
built here; mutations are byte flips, truncation, insertion of spans and of
tokens that mean something to some parser, deletion and duplication. Each
input gets a generous 2 s CPU-time hang guard (measured, not a benchmark: every case
normally takes milliseconds).
"""

from __future__ import annotations

import gzip
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrnn import Ink, InkFormatError
from vrnn.formats import READ_FORMATS, ink_to_json_bytes, read_ink

DATA = Path(__file__).parent / "data" / "formats"
HANG_GUARD_S = 2.0
FUZZ = settings(
    max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def _sketch_npz(compressed: bool) -> bytes:
    train = np.empty(3, dtype=object)
    for i, n in enumerate((4, 7, 2)):
        rows = np.arange(3 * n, dtype=np.int16).reshape(n, 3) % 5 - 2
        rows[:, 2] = (np.arange(n) % 3 == 2) | (np.arange(n) == n - 1)
        train[i] = rows
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, train=train, valid=train[:1])
    return buffer.getvalue()


def _train_npy() -> bytes:
    with zipfile.ZipFile(io.BytesIO(_sketch_npz(False))) as archive:
        return archive.read("train.npy")


def _zip(compressed: bool, **members: bytes) -> bytes:
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, raw in members.items():
            archive.writestr(name, raw)
    return buffer.getvalue()


OMNIGLOT_TXT = (DATA / "omniglot_drawing.txt").read_bytes()
XOPP_XML = gzip.decompress((DATA / "notebook.xopp").read_bytes())
SEEDS = [(path.name, path.read_bytes()) for path in sorted(DATA.iterdir())]
SEEDS += [("sketch.npz", _sketch_npz(False)), ("sketch_compressed.npz", _sketch_npz(True))]
SEEDS += [
    ("strokes.zip", _zip(False, **{"s/Latin/character01/0683_01.txt": OMNIGLOT_TXT, "s/.DS_Store": b"x"})),
    ("container.xopp", _zip(False, **{"content.xml": XOPP_XML, "mimetype": b"application/xournal++"})),
]
TRAIN_NPY = _train_npy()
MEANINGFUL = [
    b"NaN", b"inf", b"1e999", b"-", b",", b"'", b'"', b"!", b"#", b"<", b">", b"&lol;", b"\xff", b"\xc3",
    b"\n", b"\r\n", b"\x00", b"POINTS 0 #", b"NUMSTROKES 9", b"WORD ", b"{", b"}", b"[", b"]", b"null",
    b"<trace>", b"</trace>", b"<!DOCTYPE x [<!ENTITY a 'b'>]>", b".PEN_DOWN\n", b".PEN_UP\n", b"\x80\x02",
    b"cos\nsystem\n", b"R", b"b", b".",
    b"START\n", b"BREAK\n", b"1,2,3\n", b"\x1f\x8b", b'"freedraw"', b'"isDeleted": true', b'"angle": 1e308',
    b'"points": 5', b"<stroke>", b'width="', b'tool="eraser"', b"contextRef=", b'"#ctx0"', b"NaN,",
]  # fmt: skip


@st.composite
def mutated(draw, seeds=SEEDS):
    """``(name, bytes)``: a seed file after 1-4 random edits."""
    name, data = draw(st.sampled_from(seeds))
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        op = draw(st.sampled_from(["flip", "truncate", "insert", "token", "delete", "duplicate"]))
        pos = draw(st.integers(0, len(data) - 1))
        span = draw(st.integers(1, 64))
        if op == "flip":
            data[pos] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "token":
            data[pos:pos] = draw(st.sampled_from(MEANINGFUL))
        elif op == "delete":
            del data[pos : pos + span]
        else:
            data[pos:pos] = data[pos : pos + span]
    return name, bytes(data)


def assert_reads_or_refuses(data: bytes, **kwargs) -> None:
    """read_ink returns valid inks or raises a one-line InkFormatError, within the hang guard."""
    start = time.process_time()  # CPU time: the guard must not trip on a busy machine
    try:
        inks = read_ink(data, **kwargs)
    except InkFormatError as exc:
        message = str(exc)
        assert message and "\n" not in message and "\r" not in message
        if kwargs.get("name"):
            assert message.startswith(kwargs["name"])
    else:
        assert isinstance(inks, list)
        for ink in inks:
            assert isinstance(ink, Ink)
            for stroke in ink.strokes:
                assert stroke.ndim == 2 and stroke.shape[1] == 2 and len(stroke) >= 1
                assert np.isfinite(stroke).all()
    elapsed = time.process_time() - start
    assert elapsed < HANG_GUARD_S, f"{elapsed:.2f} s on a {len(data)}-byte input (hang guard)"


def test_every_seed_reads_cleanly():
    for name, data in SEEDS:
        assert read_ink(data, name=name), name


@FUZZ
@given(mutated())
def test_mutated_files_are_read_or_refused_detected_by_content_and_name(case):
    name, data = case
    assert_reads_or_refuses(data, name=name)


@FUZZ
@given(mutated(), st.sampled_from(READ_FORMATS))
def test_mutated_files_forced_through_every_reader(case, fmt):
    _, data = case
    assert_reads_or_refuses(data, format=fmt, name="forced")


@settings(FUZZ, max_examples=300)
@given(mutated([("train.npy", TRAIN_NPY)]), st.booleans())
def test_mutated_npy_members_inside_valid_zips(case, compressed):
    """Mutate the pickle itself (a mutated zip mostly just fails its CRC)."""
    buffer = io.BytesIO()
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        archive.writestr("train.npy", case[1])
    assert_reads_or_refuses(buffer.getvalue(), name="mutated.npz")


@settings(FUZZ, max_examples=300)
@given(st.binary(max_size=4096), st.sampled_from((None,) + READ_FORMATS))
def test_random_bytes(data, fmt):
    assert_reads_or_refuses(data, format=fmt, name="random.bin")


@settings(FUZZ, max_examples=300)
@given(mutated([("notebook.xml", XOPP_XML), ("old.xml", (DATA / "old_notes.xoj").read_bytes())]))
def test_mutated_xournal_xml_inside_valid_gzip(case):
    """Mutate the XML itself (a mutated gzip mostly just fails its CRC)."""
    assert_reads_or_refuses(gzip.compress(case[1], mtime=0), name="mutated.xopp")


@settings(FUZZ, max_examples=300)
@given(mutated([("drawing.txt", OMNIGLOT_TXT)]), st.booleans())
def test_mutated_omniglot_drawings_inside_valid_zips(case, compressed):
    data = _zip(compressed, **{"images/Latin/character01/0683_01.txt": case[1], "images/Latin/x.txt": OMNIGLOT_TXT})
    assert_reads_or_refuses(data, name="mutated.zip")


json_values = st.none() | st.booleans() | st.integers(-3, 3) | st.floats() | st.text(max_size=3)
point_lists = st.lists(st.lists(json_values | st.floats(-100, 100), max_size=3), max_size=4) | json_values


@st.composite
def excalidraw_elements(draw):
    element = {"type": draw(st.sampled_from(["freedraw", "freedraw", "frame", "rectangle", 7]))}
    for key, values in (
        ("x", json_values | st.floats(-1e6, 1e6)),
        ("y", json_values | st.floats(-1e6, 1e6)),
        ("angle", json_values | st.floats(-7, 7)),
        ("points", point_lists),
        ("pressures", st.lists(json_values, max_size=4) | json_values),
        ("isDeleted", st.booleans() | json_values),
        ("frameId", st.sampled_from([None, "f", "g", 3])),
        ("id", st.sampled_from(["f", "g", "e", None])),
    ):
        if draw(st.booleans()) or key in ("points", "x", "y"):
            element[key] = draw(values)
    return element


@settings(FUZZ, max_examples=300)
@given(st.lists(excalidraw_elements(), max_size=5))
def test_excalidraw_element_grammar(elements):
    doc = json.dumps({"type": "excalidraw", "elements": elements}).encode()
    assert_reads_or_refuses(doc, name="grammar.excalidraw")


UJI_LINES = [
    "WORD a trn_UJI_W01-01", "WORD", "NUMSTROKES 1", "NUMSTROKES 2", "NUMSTROKES x", "POINTS 1 # 1 2",
    "POINTS 2 # 1 2 3 4", "POINTS 2 # 1 2 3", "POINTS 0 #", "POINTS 1 1 2", "// comment", "", "  ",
    ".SEGMENT X 0 ? \"b\"", ".PEN_DOWN", ".PEN_UP", " 3 4", "5",
]  # fmt: skip


@settings(FUZZ, max_examples=300)
@given(st.lists(st.sampled_from(UJI_LINES), max_size=12), st.sampled_from(["\n", "\r\n"]))
def test_uji_line_grammar(lines, newline):
    assert_reads_or_refuses(newline.join(lines).encode(), format="uji", name="grammar.txt")


@settings(FUZZ, max_examples=300)
@given(st.text(alphabet="0123456789 ,.-+'\"!eETF*?\n", max_size=80), st.booleans(), st.booleans())
def test_inkml_trace_grammar(trace, with_time, office_context):
    channels = '<channel name="X"/><channel name="Y"/>' + ('<channel name="T"/>' if with_time else "")
    if office_context:  # X Y F in an inkSource reached through contextRef, himetric
        channels = channels.replace('name="X"/>', 'name="X" units="cm"/>') + '<channel name="F" max="32767"/>'
        doc = (
            f'<ink><definitions><context xml:id="c"><inkSource><traceFormat>{channels}</traceFormat>'
            '<channelProperties><channelProperty channel="X" name="resolution" value="1000" units="1/cm"/>'
            f'</channelProperties></inkSource></context></definitions><trace contextRef="#c">{trace}</trace>'
            '<trace contextRef="#c">1 2 3 4</trace></ink>'
        )
    else:
        doc = f"<ink><traceFormat>{channels}</traceFormat><trace>{trace}</trace><trace>1 2 3</trace></ink>"
    assert_reads_or_refuses(doc.encode(), format="inkml", name="grammar.inkml")


finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)


@st.composite
def inks(draw):
    strokes, times = [], []
    for _ in range(draw(st.integers(0, 3))):
        n = draw(st.integers(1, 5))
        strokes.append(np.array(draw(st.lists(finite, min_size=2 * n, max_size=2 * n))).reshape(n, 2))
        times.append(np.array(draw(st.lists(finite, min_size=n, max_size=n))))
    pressure = [t[::-1].copy() for t in times] if draw(st.booleans()) else None
    text = st.none() | st.text(max_size=8)
    return Ink(
        strokes=strokes,
        times=times if draw(st.booleans()) else None,
        label=draw(text),
        writer=draw(text),
        pressure=pressure,
    )


@settings(FUZZ, max_examples=100)
@given(st.lists(inks(), max_size=3))
def test_json_round_trip_is_exact_for_any_finite_floats(original):
    back = read_ink(ink_to_json_bytes(original), name="roundtrip.json")
    assert len(back) == len(original)
    for got, want in zip(back, original, strict=True):
        assert [s.tobytes() for s in got.strokes] == [s.tobytes() for s in want.strokes]
        assert (got.times is None) == (want.times is None)
        assert [t.tobytes() for t in got.times or []] == [t.tobytes() for t in want.times or []]
        assert (got.pressure is None) == (want.pressure is None)
        assert [p.tobytes() for p in got.pressure or []] == [p.tobytes() for p in want.pressure or []]
        assert (got.label, got.writer) == (want.label, want.writer)
