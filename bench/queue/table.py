"""The bench's one table: a row per system × measure, with the ratio to Tessera and the aims."""

from __future__ import annotations

from dataclasses import dataclass

TESSERA = "Tessera"


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    unit: str
    aim: float | None = None
    """Tessera's aim at the queue level: a floor for rates, a ceiling for times."""

    @property
    def is_rate(self) -> bool:
        return self.unit == "jobs/s"

    def meets(self, value: float) -> bool:
        assert self.aim is not None
        return value >= self.aim if self.is_rate else value <= self.aim


def measures(interval_ms: float) -> list[Measure]:
    load = f"{1000 / interval_ms:,.0f} jobs/s"
    return [
        Measure("enqueue", "enqueue, one job per call", "jobs/s", 15_000),
        Measure("enqueue_batch", "enqueue, batched (500 per round trip)", "jobs/s"),
        Measure("drain", "drain, 2 worker processes", "jobs/s", 5_000),
        Measure("p50", f"submit→done p50 at {load}", "ms", 5),
        Measure("p99", f"submit→done p99 at {load}", "ms", 10),
        Measure("restart", "restarted slot re-runs its job", "s", 5),
        Measure("abandoned", "abandoned job re-run by another", "s"),
    ]


@dataclass(frozen=True)
class Row:
    measure: str
    system: str
    value: str
    unit: str
    ratio: str
    note: str


def _value(value: float, unit: str) -> str:
    if unit == "jobs/s":
        return f"{value:,.0f}"
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def rows(results: dict[str, dict[str, float]], notes: dict[tuple[str, str], str], interval_ms: float) -> list[Row]:
    """``results[system][measure key]``; systems in display order, Tessera first."""
    table = []
    base = results.get(TESSERA, {})
    for measure in measures(interval_ms):
        for system, values in results.items():
            if measure.key not in values:
                continue
            value = values[measure.key]
            ratio = f"{value / base[measure.key]:.2f}×" if base.get(measure.key) else "—"
            note = notes.get((system, measure.key), "")
            if system == TESSERA and measure.aim is not None:
                verdict = "ok" if measure.meets(value) else "MISS"
                sign = "≥" if measure.is_rate else "≤"
                note = f"aim {sign} {_value(measure.aim, measure.unit)}: {verdict}" + (f"; {note}" if note else "")
            table.append(Row(measure.label, system, _value(value, measure.unit), measure.unit, ratio, note))
    return table


def render(table: list[Row]) -> str:
    header = Row("measure", "system", "value", "unit", "vs Tessera", "note")
    cells = [header, *table]
    widths = [max(len(getattr(row, field)) for row in cells) for field in Row.__dataclass_fields__]
    lines = []
    for number, row in enumerate(cells):
        values = [getattr(row, field) for field in Row.__dataclass_fields__]
        parts = [v.rjust(w) if i in (2, 4) else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths, strict=True))]
        lines.append(" | ".join(parts).rstrip())
        if number == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)
