from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from paygate.vault.audit import GENESIS_HASH, AuditEntry, AuditOutcome, next_entry, verify_chain

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def make_chain(n: int = 5) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = None
    for i in range(n):
        prev = next_entry(
            prev,
            at=T0 + timedelta(seconds=i),
            actor="key_live_1" if i % 2 else "worker:auth",
            token=f"pm_{i}",
            purpose="authorize",
            outcome=AuditOutcome.GRANTED if i != 3 else AuditOutcome.DENIED,
        )
        entries.append(prev)
    return entries


def test_an_untouched_chain_verifies() -> None:
    chain = make_chain()
    result = verify_chain(chain)
    assert result.ok and bool(result)
    assert (result.checked, result.broken_seq, result.head_seq, result.head_hash) == (
        5,
        None,
        5,
        chain[-1].hash,
    )
    assert chain[0].prev_hash == GENESIS_HASH and chain[0].seq == 1
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))


def test_empty_chain_verifies() -> None:
    assert verify_chain([]).ok


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", "intruder"),
        ("token", "pm_other"),
        ("purpose", "export"),
        ("outcome", "granted"),
        ("at", T0 + timedelta(days=1)),
    ],
)
def test_an_edited_entry_is_detected_at_its_seq(field: str, value: object) -> None:
    chain = make_chain()
    chain[3] = dataclasses.replace(chain[3], **{field: value})
    result = verify_chain(chain)
    assert not result.ok and result.broken_seq == 4 and "edited" in (result.reason or "")
    assert result.checked == 3


def test_an_edited_entry_with_a_recomputed_hash_breaks_the_next_link() -> None:
    chain = make_chain()
    forged = next_entry(chain[1], at=T0, actor="intruder", token="pm_2", purpose="authorize", outcome="granted")
    chain[2] = forged
    result = verify_chain(chain)
    assert not result.ok and result.broken_seq == 4


def test_a_deleted_entry_is_detected() -> None:
    chain = make_chain()
    del chain[2]
    result = verify_chain(chain)
    assert not result.ok and result.broken_seq == 4 and "deleted" in (result.reason or "")


def test_an_inserted_entry_is_detected() -> None:
    chain = make_chain()
    extra = next_entry(chain[1], at=T0, actor="x", token="pm_x", purpose="authorize", outcome="granted")
    chain.insert(2, extra)  # seq 3 twice
    result = verify_chain(chain)
    assert not result.ok and result.broken_seq == 3


def test_reordered_entries_are_detected() -> None:
    chain = make_chain()
    chain[1], chain[2] = chain[2], chain[1]
    result = verify_chain(chain)
    assert not result.ok and result.broken_seq == 3


def test_renumbered_entries_are_detected() -> None:
    chain = make_chain()
    del chain[2]
    chain[2:] = [dataclasses.replace(e, seq=e.seq - 1) for e in chain[2:]]
    result = verify_chain(chain)
    assert not result.ok and result.broken_seq == 3


def test_truncated_tail_is_detected_with_a_pinned_head() -> None:
    chain = make_chain()
    head = (chain[-1].seq, chain[-1].hash)
    assert verify_chain(chain[:-1]).ok  # without an anchor a shorter chain still looks fine
    result = verify_chain(chain[:-1], expected_head=head)
    assert not result.ok and result.broken_seq == 5 and "truncated" in (result.reason or "")
    assert verify_chain(chain, expected_head=head).ok
    assert verify_chain(chain, expected_head=(3, chain[2].hash)).ok  # chain grew past the pin
    assert not verify_chain(chain, expected_head=(3, "f" * 64)).ok


def test_a_window_can_be_verified_from_a_checkpoint() -> None:
    chain = make_chain()
    checkpoint = chain[1]
    assert verify_chain(chain[2:], start_seq=checkpoint.seq + 1, start_prev_hash=checkpoint.hash).ok
    assert not verify_chain(chain[2:]).ok


def test_db_rows_as_mappings_verify_including_naive_and_string_timestamps() -> None:
    rows = [e.to_dict() for e in make_chain()]
    rows[0]["at"] = rows[0]["at"].replace(tzinfo=None)  # SQLite returns naive UTC
    rows[1]["at"] = rows[1]["at"].isoformat()
    rows[2]["at"] = rows[2]["at"].astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert verify_chain(rows).ok
    rows[4]["token"] = "pm_edited"
    assert verify_chain(rows).broken_seq == 5


def test_verify_consumes_a_stream_once() -> None:
    chain = make_chain(50)
    assert verify_chain(iter(chain)).checked == 50
