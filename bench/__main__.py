"""`make bench`: every figure as one JSON line `{"name", "value", "unit", "baseline", "ratio"}`.

Each `bench/*_bench.py` module that defines `async def figures() -> list[dict]` contributes;
run one with `python -m bench NAME` (e.g. `python -m bench pipeline`).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import pkgutil
import sys
from pathlib import Path


def figure(name: str, value: float, unit: str, baseline: float | None = None, **extra: object) -> dict[str, object]:
    ratio = round(value / baseline, 3) if baseline else None
    return {
        "name": name,
        "value": round(value, 3),
        "unit": unit,
        "baseline": round(baseline, 3) if baseline is not None else None,
        "ratio": ratio,
        **extra,
    }


async def main(selected: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.endswith("_bench"))
    if selected:
        names = [n for n in names if n.removesuffix("_bench") in selected or n in selected]
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        run = getattr(module, "figures", None)
        if run is None:
            continue
        for item in await run():
            sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
