"""``paygate vault …`` and ``paygate audit …`` commands (mounted by :mod:`paygate.cli`).

* ``paygate vault rotate-kek [--rewrap-only] [--batch N]``: make a new KEK version current in the configured
  provider (file or PKCS#11), then re-wrap every record's data key under it. Old versions stay available, so
  records keep decrypting during and after the run; re-running is safe. Webhook signing secrets are re-sealed
  onto the new KEK too (and any stored before sealing existed are sealed). Exit 1 if any record failed
  authentication (left untouched; investigate it).
* ``paygate audit verify [--expected-head SEQ:HASH]``: verify the detokenization audit chain (edited, deleted,
  inserted or reordered entries, a cut tail against the stored head, or against a head pinned elsewhere).
  Prints the head to pin. Exit 1 and the first bad ``seq`` when broken.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from paygate.settings import get_settings

__all__ = ["audit_app", "vault_app"]

vault_app = typer.Typer(no_args_is_help=True, help="The card vault: key rotation.")
audit_app = typer.Typer(no_args_is_help=True, help="The detokenization audit chain.")


@vault_app.command("rotate-kek")
def rotate_kek(
    rewrap_only: Annotated[
        bool, typer.Option("--rewrap-only", help="Only re-wrap records onto the current KEK")
    ] = False,
    batch: Annotated[int, typer.Option(help="Records per transaction")] = 200,
) -> None:
    """Create a new key-encrypting key and re-wrap every stored card's data key under it."""
    from paygate.db.engine import Database
    from paygate.events.secrets import reseal_all
    from paygate.vault.service import VaultService

    settings = get_settings()

    async def go() -> int:
        db = Database(settings.database_url, pool_size=1)
        vault = VaultService(db, settings)
        try:
            report = await vault.rotate_kek(rotate=not rewrap_only, batch=batch)
            resealed = await reseal_all(db, vault.provider, batch=batch)
        finally:
            vault.close()
            await db.dispose()
        typer.echo(f"current KEK {report.kek_id}: re-wrapped {report.rewrapped} records, refused {report.skipped}")
        typer.echo(f"webhook endpoints: re-sealed {resealed.changed}, refused {resealed.refused}")
        if report.skipped or resealed.refused:
            typer.echo("records that failed authentication were left untouched; investigate them", err=True)
            return 1
        return 0

    raise typer.Exit(asyncio.run(go()))


@audit_app.command("verify")
def audit_verify(
    expected_head: Annotated[
        str | None, typer.Option("--expected-head", help="SEQ:HASH pinned outside the database")
    ] = None,
) -> None:
    """Verify the hash chain of detokenization audit records. Exit 1 if it was tampered with."""
    from paygate.db.engine import Database
    from paygate.vault.service import VaultService

    settings = get_settings()
    pinned: tuple[int, str] | None = None
    if expected_head:
        seq, _, digest = expected_head.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise typer.BadParameter("expected SEQ:HASH (hash = 64 hex characters)", param_hint="--expected-head")
        pinned = (int(seq), digest)

    async def go() -> int:
        db = Database(settings.database_url, pool_size=1)
        try:
            result = await VaultService(db, settings).verify_audit(expected_head=pinned)
        finally:
            await db.dispose()
        if result.ok:
            typer.echo(
                f"audit chain OK: {result.checked} entries; head {result.head_seq or 0}:{result.head_hash or ''}"
            )
            return 0
        typer.echo(f"audit chain BROKEN at seq {result.broken_seq}: {result.reason}", err=True)
        return 1

    raise typer.Exit(asyncio.run(go()))
