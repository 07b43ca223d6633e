"""What every benchmark returns, and the one line `bench/run.py` prints for it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BenchResult:
    """One measured figure against its baseline from the same run; `ratio` is measured / baseline."""

    name: str
    ratio: float
    goal: float
    figures: dict[str, str] = field(default_factory=dict)

    def line(self) -> str:
        extra = " ".join(f"{key}={value}" for key, value in self.figures.items())
        return f"BENCH {self.name} ratio={self.ratio:.3f} goal={self.goal} {extra}".rstrip()
