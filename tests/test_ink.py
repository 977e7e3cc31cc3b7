"""The Ink dataclass: validation of its per-point fields, offsets, copies and pressure."""

from __future__ import annotations

import numpy as np
import pytest

from vrnn import Ink, InkFormatError
from vrnn.formats import ink_to_json_bytes, read_ink


def two_strokes(**kwargs) -> Ink:
    return Ink(strokes=[np.array([[0.0, 0.0], [1.0, 2.0], [3.0, 1.0]]), np.array([[5.0, 5.0]])], **kwargs)


def test_strokes_alone_are_a_valid_ink_and_positional_fields_keep_their_order():
    ink = Ink(strokes=[[[0, 0], [1, 1]]])
    assert ink.times is None and ink.pressure is None and ink.label is None and ink.meta == {}
    assert ink.strokes[0].dtype == np.float64
    positional = Ink([np.zeros((1, 2))], [np.zeros(1)], "a", "w1")
    assert (positional.label, positional.writer, positional.times[0].tolist()) == ("a", "w1", [0.0])


def test_pressure_is_validated_like_times():
    ink = two_strokes(pressure=[[0.1, 0.5, 1.0], [0.7]])
    assert [p.tolist() for p in ink.pressure] == [[0.1, 0.5, 1.0], [0.7]]
    assert all(p.dtype == np.float64 for p in ink.pressure)
    with pytest.raises(InkFormatError, match="1 pressure arrays for 2 strokes"):
        two_strokes(pressure=[[0.1, 0.5, 1.0]])
    with pytest.raises(InkFormatError, match="stroke 0: 2 pressure values for 3 points"):
        two_strokes(pressure=[[0.1, 0.5], [0.7]])
    with pytest.raises(InkFormatError, match="stroke 1: non-finite pressure"):
        two_strokes(pressure=[[0.1, 0.5, 1.0], [np.nan]])
    with pytest.raises(InkFormatError, match="stroke 0: 2 times for 3 points"):
        two_strokes(times=[[0.0, 0.1], [0.2]])
    assert issubclass(InkFormatError, ValueError)


def test_offsets_ignore_pressure_and_round_trip_exactly():
    plain = two_strokes()
    pressed = two_strokes(pressure=[[0.1, 0.5, 1.0], [0.7]])
    np.testing.assert_array_equal(pressed.to_offsets(), plain.to_offsets())
    assert pressed.to_offsets().tolist() == [[0, 0, 0], [1, 2, 0], [2, -1, 1], [2, 4, 1]]
    back = Ink.from_offsets(pressed.to_offsets(), start=(0.0, 0.0))
    assert [s.tolist() for s in back.strokes] == [s.tolist() for s in plain.strokes]
    assert back.pressure is None and back.times is None


def test_copy_and_transformed_keep_pressure_unshared():
    ink = two_strokes(pressure=[[0.1, 0.5, 1.0], [0.7]], times=[[0, 0.1, 0.2], [0.5]], meta={"page": 2})
    copy = ink.copy()
    copy.pressure[0][0] = 9.0
    assert ink.pressure[0][0] == 0.1 and copy.meta == {"page": 2}
    moved = ink.transformed(scale=2.0, shift=(1.0, 0.0))
    assert moved.strokes[0][1].tolist() == [3.0, 4.0]
    assert [p.tolist() for p in moved.pressure] == [[0.1, 0.5, 1.0], [0.7]]


def test_pressure_round_trips_bit_exactly_through_json():
    values = [[0.1, 1 / 3, 5e-324], [0.30000000000000004]]
    ink = two_strokes(pressure=values, times=[[0.0, 0.1, 0.2], [0.5]], label="x")
    (back,) = read_ink(ink_to_json_bytes(ink), name="p.json")
    assert [p.tobytes() for p in back.pressure] == [np.asarray(v, dtype=np.float64).tobytes() for v in values]
    (none,) = read_ink(ink_to_json_bytes(two_strokes()), name="n.json")
    assert none.pressure is None
    assert b'"pressure"' not in ink_to_json_bytes(two_strokes())  # only written when present


@pytest.mark.parametrize(
    "record, problem",
    [
        ('{"strokes": [[[1, 2]]], "pressure": [[1, 2]]}', "inks[0]: stroke 0: 2 pressure values for 1 points"),
        ('{"strokes": [[[1, 2]]], "pressure": [[1], [2]]}', "'pressure' must be null or one list per stroke"),
        ('{"strokes": [[[1, 2]]], "pressure": [["hard"]]}', "inks[0].pressure[0]: values must be numbers"),
        ('{"strokes": [[[1, 2]]], "pressure": {"a": 1}}', "'pressure' must be null or one list per stroke"),
    ],
)
def test_bad_pressure_in_json_is_a_one_line_error(record, problem):
    doc = f'{{"format": "vrnn-ink", "version": 1, "inks": [{record}]}}'.encode()
    with pytest.raises(InkFormatError) as excinfo:
        read_ink(doc, name="bad.json")
    message = str(excinfo.value)
    assert "\n" not in message and message.startswith("bad.json: ") and problem in message, message
