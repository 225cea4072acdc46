"""The `cluster:` section as `qunbot check-config` reports it (no database needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.core.test_config_errors import check
from tests.harness import write_config


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            'storage: {url: "sqlite:///data/x.db"}\ncluster:\n  enabled: true\n',
            "bot.yaml:2: cluster: enabled needs PostgreSQL",
        ),
        ("cluster:\n  enabled: true\n  ttl: 3\n", "bot.yaml:3: cluster.ttl: unknown key"),
        ("cluster:\n  lease_ttl: 30\n  safety_margin: 12\n", "must be less than a third of lease_ttl"),
        ("cluster:\n  pinned: {g1: [a, b]}\n", "bot.yaml:2: cluster.pinned.g1"),
    ],
)
def test_bad_cluster_sections_name_the_line(tmp_path: Path, yaml_text: str, expected: str) -> None:
    code, lines = check(write_config(tmp_path, yaml_text))
    assert code == 2
    assert any(expected in line for line in lines), lines


def test_a_cluster_on_postgresql_with_pins_is_valid(tmp_path: Path) -> None:
    yaml_text = (
        'storage: {url: "postgresql://qunbot@db/qunbot"}\n'
        "cluster:\n  enabled: true\n  lease_ttl: 30\n  pinned: {g1: wxid_a}\n"
    )
    code, lines = check(write_config(tmp_path, yaml_text))
    assert code == 0, lines
