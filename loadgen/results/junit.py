"""JUnit XML of a threshold evaluation (`--junit FILE`), for CI systems that show test reports.

One `<testsuite name="inferload">` with one `<testcase>` per threshold (name: the expression as given;
a `<failure>` with the observed value and the bound when it failed) and, first, a `validity` testcase that holds
an `<error>` listing the reasons when the measurement was INVALID (an error, not a failure: the figures are not
trustworthy, so the run is broken rather than the thresholds not met).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from loadgen.results.thresholds import Evaluation

CLASSNAME = "inferload.thresholds"


def junit_xml(ev: Evaluation, *, suite: str = "inferload", source: str | None = None) -> str:
    """The XML document as text (UTF-8, with declaration)."""
    failures = len(ev.failed)
    errors = 0 if ev.valid else 1
    root = ET.Element("testsuites", tests=str(len(ev.outcomes) + 1), failures=str(failures), errors=str(errors))
    s = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(ev.outcomes) + 1),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
    )
    props = ET.SubElement(s, "properties")
    ET.SubElement(props, "property", name="document_kind", value=ev.kind)
    if source:
        ET.SubElement(props, "property", name="source", value=source)
    v = ET.SubElement(s, "testcase", classname=CLASSNAME, name="validity")
    if not ev.valid:
        text = "; ".join(ev.invalid_reasons) or "the measurement is INVALID"
        err = ET.SubElement(v, "error", message=f"INVALID measurement: {text}", type="invalid")
        err.text = "\n".join(ev.invalid_reasons)
    for o in ev.outcomes:
        tc = ET.SubElement(s, "testcase", classname=CLASSNAME, name=o.threshold.text)
        if o.status == "fail":
            f = ET.SubElement(tc, "failure", message=o.message, type="threshold")
            f.text = o.message
        else:
            out = ET.SubElement(tc, "system-out")
            out.text = o.message
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(path: str | Path, ev: Evaluation, *, suite: str = "inferload", source: str | None = None) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(junit_xml(ev, suite=suite, source=source), encoding="utf-8")
