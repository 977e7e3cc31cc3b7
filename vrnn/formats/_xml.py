"""Safe XML parsing for the IAM-OnDB and InkML readers (defusedxml).

DTDs are allowed (InkML files may carry one) but entity declarations and
external references are refused, so entity-expansion bombs ("billion laughs",
quadratic blow-up) and external entities (XXE) never expand. Every parser
exception becomes a one-line :class:`~vrnn.ink.InkFormatError`.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as safe_et

from ._common import Source

_SAFE = {"forbid_dtd": False, "forbid_entities": True, "forbid_external": True}


def local_name(tag: object) -> str:
    """``"trace"`` for ``"{http://www.w3.org/2003/InkML}trace"``; ``""`` for comments / PIs."""
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


@contextmanager
def xml_errors(src: Source) -> Iterator[None]:
    """Turn defusedxml / expat exceptions raised inside the block into ``InkFormatError``."""
    try:
        yield
    except defusedxml.EntitiesForbidden:
        raise src.error("XML", "entity declarations are refused (entity expansion)") from None
    except defusedxml.ExternalReferenceForbidden:
        raise src.error("XML", "external references are refused") from None
    except defusedxml.DefusedXmlException as exc:
        raise src.error("XML", f"refused: {type(exc).__name__}") from None
    except LookupError as exc:  # an encoding name Python does not know
        raise src.error("XML", f"unsupported encoding: {exc}") from None
    except ParseError as exc:
        raise src.error("XML", f"not well-formed: {exc}") from None


def parse_xml(data: bytes, src: Source, max_elements: int) -> Element:
    """The root element of ``data``, refusing documents of more than ``max_elements`` elements.

    A tree costs ~100 bytes per element, so ``<a/><a/>...`` would otherwise
    turn 50 MB of XML into gigabytes of memory.
    """
    root = None
    for count, (_, element) in enumerate(iterparse_xml(data, src, events=("start",)), 1):
        if root is None:
            root = element
        if count > max_elements:
            raise src.error("XML", f"more than {max_elements:,} elements")
    if root is None:  # expat has already refused an empty document; keep the type checker honest
        raise src.error("XML", "no root element")
    return root


def iterparse_xml(data: bytes, src: Source, events=("start", "end")) -> Iterator[tuple[str, Element]]:
    """``(event, element)`` pairs of ``data`` as it is parsed (memory stays bounded if you clear)."""
    with xml_errors(src):
        yield from safe_et.iterparse(io.BytesIO(data), events=events, **_SAFE)
