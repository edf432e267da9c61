"""A tiny recorder of contract checks: (scenario, description, category, passed)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

# contract: what the reference client needs to work (fails the pytest test of its scenario);
# clinical: values the AI estimates on our synthetic stand-in photos (expected scores, categories, items,
#   the top diagnosis); identity: the vendor's own device identity; spec-deviation: a place where the
#   reference suite expects something dermq's own spec/docs decide otherwise. The last three are counted apart.
CATEGORIES = ("contract", "clinical", "identity", "spec-deviation")
FAILING = {"contract"}


@dataclass(frozen=True)
class Check:
    scenario: str
    description: str
    category: str
    passed: bool
    detail: str = ""


class Checks:
    def __init__(self) -> None:
        self.records: list[Check] = []
        self.parser_throws: list[tuple[str, str]] = []  # (scenario, message)
        self.parser_warnings: list[tuple[str, str]] = []

    def record(self, scenario: str, description: str, passed: Any, category: str = "contract",
               detail: Any = "") -> bool:
        if category not in CATEGORIES:
            raise ValueError(f"unknown category {category!r}")
        ok = bool(passed)
        self.records.append(Check(scenario, description, category, ok, "" if ok else str(detail)[:300]))
        return ok

    def scenario(self, name: str) -> "ScenarioChecks":
        return ScenarioChecks(self, name)

    def extend(self, other: "Checks") -> None:
        self.records += other.records
        self.parser_throws += other.parser_throws
        self.parser_warnings += other.parser_warnings

    # --- views ---
    def of(self, scenario: str) -> list[Check]:
        return [c for c in self.records if c.scenario == scenario]

    def failures(self, scenario: str | None = None, categories: Iterable[str] = FAILING) -> list[Check]:
        cats = set(categories)
        return [c for c in self.records if not c.passed and c.category in cats
                and (scenario is None or c.scenario == scenario)]

    def tally(self) -> dict[str, dict[str, int]]:
        total, passed = Counter(), Counter()
        for c in self.records:
            total[c.category] += 1
            passed[c.category] += c.passed
        return {cat: {"passed": passed[cat], "total": total[cat]} for cat in CATEGORIES}

    def report(self) -> dict[str, Any]:
        groups: dict[str, int] = defaultdict(int)
        for c in self.failures():
            groups[group_of(c)] += 1
        return {
            "tally": self.tally(),
            "scenarios": len({c.scenario for c in self.records}),
            "parser": {"throws": len(self.parser_throws), "warnings": len(self.parser_warnings),
                       "throwing": [f"{s}: {m}" for s, m in self.parser_throws],
                       "warning": [f"{s}: {m}" for s, m in self.parser_warnings][:200]},
            "failing_contract_groups": dict(sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))),
            "failing": {cat: [asdict(c) for c in self.failures(categories=[cat])] for cat in CATEGORIES},
        }

    def write(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.report(), indent=2, default=str) + "\n")

    def summary_lines(self) -> list[str]:
        t = self.tally()
        lines = [f"contract checks: {t['contract']['passed']}/{t['contract']['total']} passed",
                 f"parser: {len(self.parser_throws)} throws, {len(self.parser_warnings)} warnings "
                 f"(each also a failed contract check)",
                 f"counted apart: clinical {t['clinical']['passed']}/{t['clinical']['total']}, "
                 f"identity {t['identity']['passed']}/{t['identity']['total']}, "
                 f"spec-deviation {t['spec-deviation']['passed']}/{t['spec-deviation']['total']}"]
        groups = self.report()["failing_contract_groups"]
        if groups:
            lines.append("failing contract check groups:")
            lines += [f"  {n:4d}  {g}" for g, n in groups.items()]
        return lines


def group_of(check: Check) -> str:
    """A failing check's group: its scenario family plus the description with per-item detail folded."""
    family = check.scenario.split("[", 1)[0]
    return f"{family}: {check.description.split(' :: ', 1)[0]}"


class ScenarioChecks:
    """Checks bound to one scenario name."""

    def __init__(self, checks: Checks, name: str) -> None:
        self.checks, self.name = checks, name

    def __call__(self, description: str, passed: Any, category: str = "contract", detail: Any = "") -> bool:
        return self.checks.record(self.name, description, passed, category, detail)

    def eq(self, description: str, actual: Any, expected: Any, category: str = "contract") -> bool:
        return self(description, actual == expected, category, f"got {actual!r}, expected {expected!r}")
