"""Move the frozen test split out of the development corpus (run once per new corpus file).

A line belongs to the test split when the SHA-1 of its id, read as a number, is divisible by
5 (one line in five). The rule was fixed before any tuning, so the split does not depend on
what the model gets right; the lines it selects live in `frozen_test.jsonl` here, are never
trained or tuned on, and are scored once, at the end (`qunbot spam-eval`).

    python tests/data/antispam/freeze_split.py
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "plugins" / "antispam" / "corpus"
FROZEN = Path(__file__).resolve().parent / "frozen_test.jsonl"


def in_test_split(ident: str) -> bool:
    return int(hashlib.sha1(ident.encode()).hexdigest()[:8], 16) % 5 == 0


def main() -> None:
    frozen = FROZEN.read_text(encoding="utf-8").splitlines() if FROZEN.exists() else []
    known = {json.loads(line)["id"] for line in frozen if line.strip()}
    for path in sorted(CORPUS.glob("*.jsonl")):
        if path.name == "seed.jsonl":
            continue  # the old seed set: small, and written before this corpus
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            ident = json.loads(line)["id"]
            if in_test_split(ident):
                if ident not in known:
                    frozen.append(line)
                    known.add(ident)
            else:
                keep.append(line)
        path.write_text("\n".join(keep) + "\n", encoding="utf-8")
    FROZEN.write_text("\n".join(frozen) + "\n", encoding="utf-8")
    print(f"{len(known)} lines in {FROZEN.name}")


if __name__ == "__main__":
    main()
