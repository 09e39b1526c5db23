"""The sandbox's migrations: Flyway's names and checksums, and the same checksum as the one bva
reads history with (the sandbox may not import bva's adapters, so each has its own)."""

from __future__ import annotations

import zlib

import pytest

from backends.db.flyway import checksum
from backends.sandbox.pgschema import APPLIED, MIGRATIONS, PENDING, describe, flyway_checksum


@pytest.mark.parametrize("text", [s for _, s in MIGRATIONS] + ["\ufeffa\r\nb\rc\n", "", "x"])
def test_the_sandbox_and_bva_compute_flyways_checksum_alike(text: str) -> None:
    assert flyway_checksum(text) == checksum(text)


def test_the_checksum_is_crc32_of_the_lines_without_their_endings() -> None:
    crc = zlib.crc32(b"CREATE SCHEMA a;SELECT 1;")
    assert flyway_checksum("CREATE SCHEMA a;\nSELECT 1;\n") == (
        crc - (1 << 32) if crc >= 1 << 31 else crc
    )


def test_versions_and_descriptions_as_flyway_derives_them() -> None:
    assert describe("V1_1__add_things.sql") == ("1.1", "add things")
    with pytest.raises(ValueError):
        describe("R__views.sql")
    assert len(APPLIED) == 6 and len(PENDING) == 1
    assert [describe(s)[0] for s, _ in MIGRATIONS] == ["1", "2", "3", "4", "5", "6", "7"]
