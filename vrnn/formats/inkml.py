"""W3C InkML (Ink Markup Language, REC 2011) documents.

What is read:

- ``<trace>`` elements: points separated by ``,``, values by whitespace (or by a
  sign, ``10-5``). Value prefixes follow the spec: ``!`` explicit, ``'`` first
  difference (``x_i = x_{i-1} + d``), ``"`` second difference
  (``x_i = x_{i-1} + (x_{i-1} - x_{i-2}) + a``); a prefix holds for the following
  values of its channel until another one appears. ``type="penUp"`` traces are
  hover, not ink, and are skipped.
- Channels are found by name, never by position: ``X`` and ``Y`` (required)
  are the coordinates, ``T`` (optional) the time, ``F`` (optional) the pen
  pressure; any other channel (``OTx``, ``OTy``, ``S``, ..., regular or
  intermittent) is parsed and ignored.
- The trace format comes from the trace's ``contextRef``, else its enclosing
  ``traceGroup``'s, else the last top-level ``<context>`` / ``<traceFormat>``
  seen, else the spec's default ``X Y``. A context gives its format through a
  ``<traceFormat>`` child, ``traceFormatRef``, an ``<inkSource>`` child or
  ``inkSourceRef`` (the inkSource's ``traceFormat``, as Office / OneNote and
  Windows Ink write it), else through its own ``contextRef``.
- Units: ``X`` / ``Y`` with a length unit (``m``, ``cm``, ``mm``, ``in``, ``pt``,
  ``pc``, ``himetric``) are converted to millimetres (then ``meta["units"] =
  "mm"``), dividing first by the inkSource's ``channelProperty`` ``resolution``
  when it is given per that unit (Office's ``units="cm"`` with resolution
  ``1000 1/cm`` is himetric, 0.01 mm); other coordinates are kept as written.
  ``T`` becomes seconds from its ``units`` (``s``, ``ms``, ``us``; milliseconds
  when absent or ``dev``, as Office writes it) or a ``1/s`` / ``1/ms``
  resolution. ``F`` becomes ``pressure`` divided by the channel's ``max`` when it
  declares one (Office: 32767), so 1.0 is full pressure.
- Traces drawn with a highlighter brush (``brushRef`` to a ``<brush>`` whose
  ``rasterOp`` is ``maskPen``, Office's highlighter) are left out, like pen-up
  traces.
- Grouping: one :class:`~vrnn.ink.Ink` per top-level ``<traceGroup>`` holding
  pen-down traces (at any depth), in document order, and one more, first, for
  top-level traces outside any group (the whole document when traces are flat,
  as in CROHME, whose groups only hold ``traceView`` references).
- ``<annotation type="truth">`` becomes ``label`` (the group's own, or the
  document's for the flat traces) and ``<annotation type="writer">`` ``writer``.
- ``times`` is set when every trace of an ink has ``T``, else ``None``;
  ``pressure`` likewise for ``F``.

Refused with :class:`~vrnn.ink.InkFormatError`: more than 500,000 XML
elements (a tree costs memory per element), empty traces, a point with the
wrong number of values, ``T``/``F``/``*``/``?`` values in ``X``/``Y``/``T``, a
difference with too few previous points, NaN/inf, unresolvable references
(a ``contextRef`` / ``traceFormatRef`` / ``inkSourceRef`` / ``brushRef`` to an id
the document does not define; nothing outside the document is ever fetched).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element

import numpy as np

from vrnn.ink import Ink

from ._common import Source, finite_float, finite_or_error, snippet
from ._xml import local_name, parse_xml

_XML_ID = "{http://www.w3.org/XML/1998/namespace}id"
_TIME_SCALES = {"s": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "dev": 1e-3}
# Millimetres per unit of a length channel (InkML's unit names, and Windows' himetric).
_LENGTH_MM = {"m": 1000.0, "cm": 10.0, "mm": 1.0, "in": 25.4, "pt": 25.4 / 72, "pc": 25.4 / 6, "himetric": 0.01}
_DEFAULT_TIME_SCALE = 1e-3
_MAX_REFERENCE_CHAIN = 16
_MAX_CHANNELS = 64
_MAX_ELEMENTS = 500_000  # XML elements per document (traces hold their points as text)
# One value: optional difference prefix, then a number or one of the symbolic values.
_VALUE = re.compile(r"""([!'"]?)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[TF*?])|(,)""")
_PLAIN_TRACE = re.compile(r"[^\d\s.,eE+\-]")  # anything else needs the slow path


@dataclass(frozen=True)
class TraceFormat:
    """Channel names of a ``<traceFormat>``: regular ones (always present) then intermittent ones."""

    regular: tuple[str, ...]
    intermittent: tuple[str, ...] = ()
    time_scale: float = _DEFAULT_TIME_SCALE  # seconds per unit of T
    x_scale: float = 1.0  # output units per unit of X (mm when in_mm)
    y_scale: float = 1.0
    pressure_scale: float = 1.0  # 1 / the F channel's max
    in_mm: bool = False  # X and Y both had length units: coordinates are millimetres

    def index(self, channel: str) -> int | None:
        return self.regular.index(channel) if channel in self.regular else None


DEFAULT_FORMAT = TraceFormat(("X", "Y"))


def read_inkml(data: bytes, src: Source) -> list[Ink]:
    """Parse an InkML document into inks (see the module docstring for the grouping)."""
    root = parse_xml(data, src, _MAX_ELEMENTS)
    if local_name(root.tag) != "ink":
        raise src.error("XML", f"root element is <{local_name(root.tag)}>, not <ink>")
    return _Document(root, src).inks()


def _element_id(element: Element) -> str | None:
    return element.get(_XML_ID) or element.get("id")


def _annotation(element: Element, kind: str) -> str | None:
    for child in element:
        if local_name(child.tag) == "annotation" and child.get("type") == kind:
            text = (child.text or "").strip()
            return text or None
    return None


class _Document:
    """Lookup tables of one InkML document and the walk that turns it into inks."""

    def __init__(self, root: Element, src: Source) -> None:
        self.root = root
        self.src = src
        self.formats: dict[str, Element] = {}
        self.contexts: dict[str, Element] = {}
        self.sources: dict[str, Element] = {}
        self.brushes: dict[str, Element] = {}
        tables = {"traceFormat": self.formats, "context": self.contexts, "inkSource": self.sources, "brush": self.brushes}
        # Resolved formats by element: every trace may name the same context, so resolve each once.
        self._resolved: dict[object, TraceFormat | None] = {}
        self._highlighter: dict[str, bool] = {}
        for element in root.iter():
            tag = local_name(element.tag)
            ident = _element_id(element)
            if ident and tag in tables:
                tables[tag][ident] = element

    # ------------------------------------------------------------- formats
    def _reference(self, ref: str, table: dict[str, Element], what: str) -> Element:
        if not ref.startswith("#") or ref[1:] not in table:
            raise self.src.error(f"{what} reference", f"cannot resolve {snippet(ref)} (only '#id' in this document)")
        return table[ref[1:]]

    def trace_format(self, element: Element, properties: tuple = ()) -> TraceFormat:
        """The channels a ``<traceFormat>`` declares (following ``href`` references), with the
        ``resolution`` channel properties ``((channel, value, units), ...)`` of its inkSource."""
        key = (id(element), properties)
        if key not in self._resolved:
            self._resolved[key] = self._trace_format(element, dict((c, (v, u)) for c, v, u in properties))
        return self._resolved[key]

    def _trace_format(self, element: Element, resolution: dict) -> TraceFormat:
        for _ in range(_MAX_REFERENCE_CHAIN):
            href = element.get("href")
            if href is None:
                break
            element = self._reference(href, self.formats, "traceFormat")
        else:
            raise self.src.error("traceFormat", "reference chain too long or circular")
        regular, intermittent, declared = [], [], {}
        for child in element:
            tag = local_name(child.tag)
            channels = [child] if tag == "channel" else [c for c in child if local_name(c.tag) == "channel"]
            for channel in channels:
                name = channel.get("name")
                if not name:
                    raise self.src.error("traceFormat", "channel without a name")
                (regular if tag == "channel" else intermittent).append(name)
                declared.setdefault(name, channel)
        if len(regular) + len(intermittent) > _MAX_CHANNELS:
            raise self.src.error("traceFormat", f"more than {_MAX_CHANNELS} channels")
        if "X" not in regular or "Y" not in regular:
            raise self.src.error("traceFormat", f"needs regular channels X and Y, has {snippet(regular)}")
        x_scale, x_mm = self._length_scale("X", declared["X"], resolution)
        y_scale, y_mm = self._length_scale("Y", declared["Y"], resolution)
        time_scale = self._time_scale(declared.get("T"), resolution.get("T"))
        pressure_scale = 1.0
        if "F" in declared:
            top = finite_float(declared["F"].get("max"))
            pressure_scale = 1.0 / top if top and top > 0 else 1.0
        return TraceFormat(
            tuple(regular), tuple(intermittent), time_scale, x_scale, y_scale, pressure_scale, x_mm and y_mm
        )

    def _length_scale(self, name: str, channel: Element, resolution: dict) -> tuple[float, bool]:
        """``(factor, in_mm)``: millimetres per raw value for a length unit, else ``(1, False)``."""
        units = (channel.get("units") or "").strip()
        value, per = resolution.get(name, (None, ""))
        if not units and per.startswith("1/"):
            units = per[2:]
        mm = _LENGTH_MM.get(units.lower())
        if mm is None:
            return 1.0, False
        if value is not None and value > 0 and per.lower() in ("", f"1/{units.lower()}"):
            mm /= value  # values counted in 1/resolution of the unit (Office: 1000 per cm)
        return mm, True

    def _time_scale(self, channel: Element | None, resolution) -> float:
        if channel is None:
            return _DEFAULT_TIME_SCALE
        units = (channel.get("units") or "ms").strip()
        if units not in _TIME_SCALES:
            raise self.src.error("traceFormat", f"unknown time units {snippet(units)}")
        if resolution is not None and resolution[0] and resolution[0] > 0:
            per = {"1/s": 1.0, "1/ms": 1e-3}.get(resolution[1])
            if per is not None and units in ("dev", "ms", "s"):
                return per / resolution[0]
        return _TIME_SCALES[units]

    def ink_source(self, source: Element) -> tuple[Element | None, tuple]:
        """An ``<inkSource>``'s ``traceFormat`` (or ``None``) and its ``resolution`` channel properties."""
        fmt, properties = None, []
        for child in source:
            tag = local_name(child.tag)
            if tag == "traceFormat" and fmt is None:
                fmt = child
            elif tag == "channelProperties":
                for prop in child:
                    if local_name(prop.tag) == "channelProperty" and prop.get("name") == "resolution":
                        value = finite_float(prop.get("value"))
                        channel = prop.get("channel")
                        if channel and value is not None:
                            properties.append((channel, value, (prop.get("units") or "").strip()))
        return fmt, tuple(properties)

    def context_format(self, context: Element) -> TraceFormat | None:
        """The trace format a ``<context>`` sets, or ``None`` when it sets none."""
        key = id(context)
        if key not in self._resolved:
            self._resolved[key] = self._context_format(context)
        return self._resolved[key]

    def _context_format(self, context: Element) -> TraceFormat | None:
        for _ in range(_MAX_REFERENCE_CHAIN):
            fmt, properties = None, ()
            for child in context:
                tag = local_name(child.tag)
                if tag == "traceFormat" and fmt is None:
                    fmt = child
                elif tag == "inkSource":
                    source_format, properties = self.ink_source(child)
                    fmt = fmt if fmt is not None else source_format
            if fmt is None and context.get("traceFormatRef"):
                fmt = self._reference(context.get("traceFormatRef"), self.formats, "traceFormat")
            if fmt is None and context.get("inkSourceRef"):
                fmt, properties = self.ink_source(self._reference(context.get("inkSourceRef"), self.sources, "inkSource"))
            elif context.get("inkSourceRef") and not properties:
                _, properties = self.ink_source(self._reference(context.get("inkSourceRef"), self.sources, "inkSource"))
            if fmt is not None:
                return self.trace_format(fmt, properties)
            if not context.get("contextRef"):
                return None
            context = self._reference(context.get("contextRef"), self.contexts, "context")
        raise self.src.error("context", "reference chain too long or circular")

    def is_highlighter(self, ref: str) -> bool:
        """Whether ``brushRef`` names a highlighter brush (``rasterOp`` ``maskPen``, as Office writes it)."""
        if ref not in self._highlighter:
            brush = self._reference(ref, self.brushes, "brush")
            self._highlighter[ref] = any(
                local_name(p.tag) == "brushProperty" and p.get("name") == "rasterOp" and p.get("value") == "maskPen"
                for p in brush
            )
        return self._highlighter[ref]

    def format_of(self, element: Element, inherited: TraceFormat) -> TraceFormat:
        ref = element.get("contextRef")
        if ref:
            found = self.context_format(self._reference(ref, self.contexts, "context"))
            if found is not None:
                return found
        return inherited

    # ---------------------------------------------------------------- walk
    def inks(self) -> list[Ink]:
        doc_label = _annotation(self.root, "truth")
        doc_writer = _annotation(self.root, "writer")
        current = DEFAULT_FORMAT
        loose: list[tuple[np.ndarray, np.ndarray | None]] = []
        groups: list[tuple[int, list, str | None, str | None]] = []
        trace_count = 0
        for child in self.root:
            tag = local_name(child.tag)
            if tag == "traceFormat":
                current = self.trace_format(child)
            elif tag == "context":
                current = self.context_format(child) or current
            elif tag == "trace":
                trace_count += 1
                decoded = self.trace(child, self.format_of(child, current), f"trace {trace_count}")
                if decoded is not None:
                    loose.append(decoded)
            elif tag == "traceGroup":
                traces, trace_count = self.group_traces(child, current, trace_count)
                if traces:
                    label = _annotation(child, "truth")
                    writer = _annotation(child, "writer") or doc_writer
                    groups.append((len(groups) + 1, traces, label, writer))
        inks = []
        if loose:
            inks.append(self.make_ink("document", loose, doc_label, doc_writer))
        for number, traces, label, writer in groups:
            inks.append(self.make_ink(f"traceGroup {number}", traces, label, writer))
        if not inks:
            raise self.src.error(None, "no pen-down trace elements")
        return inks

    def group_traces(self, group: Element, inherited: TraceFormat, trace_count: int):
        """Decoded pen-down traces under ``group`` at any depth, in document order (no recursion)."""
        traces = []
        stack = [(group, self.format_of(group, inherited))]
        while stack:
            element, fmt = stack.pop()
            pending = []
            for child in element:
                tag = local_name(child.tag)
                if tag == "trace":
                    pending.append((child, fmt))
                elif tag == "traceGroup":
                    pending.append((child, self.format_of(child, fmt)))
            # children go on the stack in reverse so they come off in document order;
            # traces are decoded when popped, so order is preserved across depths.
            for item in reversed(pending):
                stack.append(item)
            if local_name(element.tag) == "trace":
                trace_count += 1
                decoded = self.trace(element, self.format_of(element, fmt), f"trace {trace_count}")
                if decoded is not None:
                    traces.append(decoded)
        return traces, trace_count

    def make_ink(self, where: str, traces: list, label: str | None, writer: str | None) -> Ink:
        strokes = [trace.xy for trace in traces]
        times = [trace.t for trace in traces] if all(trace.t is not None for trace in traces) else None
        pressure = [trace.f for trace in traces] if all(trace.f is not None for trace in traces) else None
        meta = {"units": "mm"} if all(trace.in_mm for trace in traces) else {}
        return self.src.make_ink(where, strokes, times=times, label=label, writer=writer, meta=meta, pressure=pressure)

    def trace(self, element: Element, fmt: TraceFormat, where: str):
        """The decoded :class:`Trace` of a pen-down trace, ``None`` for a pen-up or highlighter one."""
        ident = _element_id(element)
        if ident:
            where = f"{where} (id {snippet(ident, 30)})"
        if element.get("type") == "penUp":
            return None
        brush = element.get("brushRef")
        if brush and self.is_highlighter(brush):
            return None
        return decode_trace(element.text or "", fmt, self.src, where)


@dataclass(frozen=True)
class Trace:
    """One decoded trace: ``xy (n, 2)`` scaled, ``t`` seconds and ``f`` pressure (``None`` when absent)."""

    xy: np.ndarray
    t: np.ndarray | None
    f: np.ndarray | None
    in_mm: bool


def decode_trace(text: str, fmt: TraceFormat, src: Source, where: str) -> Trace:
    """The :class:`Trace` in the text of one ``<trace>`` in format ``fmt``."""
    text = text.strip()
    if text.endswith(","):  # a trailing separator ends no point
        text = text[:-1].rstrip()
    if not text:
        raise src.error(where, "empty trace")
    ix, iy, it, jf = fmt.index("X"), fmt.index("Y"), fmt.index("T"), fmt.index("F")
    columns = [ix, iy] + [c for c in (it, jf) if c is not None]
    values = None if _PLAIN_TRACE.search(text) else _plain_values(text, len(fmt.regular))
    if values is None:
        values = _encoded_values(text, fmt, columns, src, where)
    else:
        values = values[:, columns]
    src.add_points(len(values), where)
    finite_or_error(src, where, values)
    xy = np.ascontiguousarray(values[:, :2]) * (fmt.x_scale, fmt.y_scale)
    t = None if it is None else values[:, 2] * fmt.time_scale
    f = None if jf is None else values[:, -1] * fmt.pressure_scale
    return Trace(xy, t, f, fmt.in_mm)


def _plain_values(text: str, width: int) -> np.ndarray | None:
    """Fast path: explicit, whitespace-separated values, every point with all regular channels."""
    rows = [point.split() for point in text.split(",")]
    if any(len(row) != width for row in rows):
        return None
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), width)
    except ValueError:  # e.g. '10-5' (two values without space): the slow path splits it
        return None


def _encoded_values(text: str, fmt: TraceFormat, columns: list[int], src: Source, where: str) -> np.ndarray:
    """Slow path: difference prefixes, sign-separated values, intermittent channels."""
    leftover = _VALUE.sub("", text)
    if leftover.strip():
        bad = leftover.strip()[:20]
        raise src.error(where, f"unexpected characters {snippet(bad)} in trace data")
    lowest, highest = len(fmt.regular), len(fmt.regular) + len(fmt.intermittent)
    points: list[list[tuple[str, str]]] = [[]]
    for prefix, value, comma in _VALUE.findall(text):
        if comma:
            points.append([])
        else:
            points[-1].append((prefix, value))
    for number, point in enumerate(points, 1):
        if not lowest <= len(point) <= highest:
            raise src.error(where, f"point {number} has {len(point)} values for {lowest} channels")
    out = np.empty((len(points), len(columns)))
    for column, channel in enumerate(columns):
        out[:, column] = _decode_channel([point[channel] for point in points], src, where, fmt.regular[channel])
    return out


def _decode_channel(values: list[tuple[str, str]], src: Source, where: str, channel: str) -> list[float]:
    """Absolute values of one channel from ``(prefix, value)`` pairs (prefixes persist)."""
    mode = "!"
    out: list[float] = []
    previous = velocity = None
    for number, (prefix, token) in enumerate(values, 1):
        mode = prefix or mode
        if token in ("T", "F", "*", "?"):
            raise src.error(where, f"point {number}: value {token!r} is not supported in channel {channel}")
        value = float(token)
        if mode == "!":
            current = value
            velocity = None if previous is None else current - previous
        elif mode == "'":
            if previous is None:
                raise src.error(where, f"point {number}: first difference in channel {channel} with no previous point")
            velocity = value
            current = previous + velocity
        else:
            if velocity is None:
                raise src.error(
                    where, f"point {number}: second difference in channel {channel} needs two previous points"
                )
            velocity = velocity + value
            current = previous + velocity
        out.append(current)
        previous = current
    return out
