"""The benchmark report: figures against targets, the machine, written as Markdown and JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

MB_PER_MIB = 2**20 / 10**6


@dataclasses.dataclass
class Figure:
    """One line of the report. `value` is a number; `met` is None when the figure has no target."""

    name: str
    value: float
    unit: str
    target: str = "—"
    met: bool | None = None
    note: str = ""

    def measured(self) -> str:
        if self.unit == "events/s":
            return f"{self.value:,.0f} events/s"
        if self.unit == "x":
            return f"{self.value:.2f}×"
        if self.unit == "%":
            return f"{self.value:.0f} %"
        if self.unit == "s":
            return f"{self.value:.2f} s"
        if self.unit == "M loops/s":
            return f"{self.value:.1f} M loops/s"
        return f"{self.value:,.0f} {self.unit}"


def machine(kafka_line: str = "") -> dict[str, Any]:
    """CPU model, cores, load, Python and the versions of the libraries compared."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.M)
        model = found.group(1).strip() if found else model
    versions = {}
    for package in ("faust-streaming", "aiokafka", "quixstreams", "orjson", "kafka-python", "prometheus-client"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    kafka = re.search(r"Kafka (\S+) ready", kafka_line)
    # the interpreter's installation too: builds of one version differ by ~11 % (README, Performance)
    python = f"{platform.python_version()} ({sys.base_prefix})"
    return {"cpu": model, "cores": os.cpu_count(), "python": python,
            "system": f"{platform.system()} {platform.release()}", "kafka": kafka.group(1) if kafka else "unknown",
            "versions": versions}


def write(out: Path, figures: list[Figure], details: dict[str, Any], info: dict[str, Any], notes: list[str]) -> None:
    """report.md (a table of every figure) and report.json (figures, details, machine)."""
    out.mkdir(parents=True, exist_ok=True)
    versions = ", ".join(f"{name} {version}" for name, version in info["versions"].items())
    lines = [
        "# ccpulse benchmark report", "",
        f"- Machine: {info['cpu']}, {info['cores']} cores, {info['system']}; Python {info['python']}; "
        f"Kafka {info['kafka']}",
        f"- Libraries: {versions}",
        f"- Mode: {details['mode']}; started {details['started']}; load average (1 min) at start "
        f"{details['load'][0]:.2f}, at end {details['load'][1]:.2f}", "",
        "| figure | measured | target | met? |", "|---|---|---|---|",
    ]
    for figure in figures:
        met = "—" if figure.met is None else ("yes" if figure.met else "**no**")
        name = f"{figure.name} ({figure.note})" if figure.note else figure.name
        lines.append(f"| {name} | {figure.measured()} | {figure.target} | {met} |")
    if notes:
        lines += ["", "Notes:", "", *[f"- {note}" for note in notes]]
    (out / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    payload = {"machine": info, "figures": [dataclasses.asdict(figure) for figure in figures],
               "details": details, "notes": notes}
    (out / "report.json").write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
