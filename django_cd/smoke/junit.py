"""A smoke report as JUnit XML, for CI servers that chart test results."""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from django_cd.smoke.run import SmokeReport


def write(report: SmokeReport, path: Path, suite: str = "smoketest") -> None:
    """Write ``report`` to ``path`` atomically (one testcase per check)."""
    root = ET.Element(
        "testsuite",
        name=suite,
        tests=str(len(report.results)),
        failures=str(len(report.failed)),
        errors="0",
        time=f"{report.seconds:.3f}",
    )
    for result in report.results:
        case = ET.SubElement(
            root, "testcase", classname=suite, name=result.name, time=f"{result.seconds:.3f}"
        )
        if not result.ok:
            failure = ET.SubElement(case, "failure", message=result.message)
            failure.text = f"status {result.status}: {result.message}"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as file:
            ET.ElementTree(root).write(file, encoding="utf-8", xml_declaration=True)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
