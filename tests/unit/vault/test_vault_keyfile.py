"""File key provider: creation, permissions, persistence, concurrent rotation."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import orjson
import pytest

from paygate.vault.crypto import open_card, seal_card
from paygate.vault.errors import KeyFilePermissionError, KeyProviderError
from paygate.vault.keys.file import FileKeyProvider


def test_key_file_is_created_on_first_use_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "kek.json"
    provider = FileKeyProvider(path)
    assert not path.exists()  # lazy: nothing happens until first use
    kek_id = provider.current_kek_id()
    assert kek_id.endswith(":v1")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob(".*.tmp"))  # no temp file left behind


def test_key_file_created_under_a_permissive_umask_is_still_0600(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        FileKeyProvider(tmp_path / "kek.json").current_kek_id()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "kek.json").stat().st_mode) == 0o600


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_key_file_readable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "kek.json"
    FileKeyProvider(path).current_kek_id()
    path.chmod(mode)
    with pytest.raises(KeyFilePermissionError, match="chmod 600"):
        FileKeyProvider(path).current_kek_id()


def test_key_file_symlink_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    FileKeyProvider(real).current_kek_id()
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(KeyProviderError):
        FileKeyProvider(link).current_kek_id()


def test_missing_key_file_is_an_error_when_creation_is_disabled(tmp_path: Path) -> None:
    with pytest.raises(KeyProviderError, match="does not exist"):
        FileKeyProvider(tmp_path / "kek.json", create=False).current_kek_id()


@pytest.mark.parametrize("content", [b"not json", b"{}", b'{"keys": {"1": {"key": "!!"}}, "current": 1}'])
def test_malformed_key_file_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "kek.json"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(KeyProviderError):
        FileKeyProvider(path).current_kek_id()


def test_keys_persist_across_provider_instances_and_rotation_keeps_old_versions(tmp_path: Path) -> None:
    path = tmp_path / "kek.json"
    first = FileKeyProvider(path)
    sealed = seal_card(
        number="4242424242424242", exp_month=1, exp_year=2031, token="pm_1", merchant_id="m", provider=first
    )
    first.rotate()
    second = FileKeyProvider(path)
    assert second.kek_ids() == first.kek_ids() and len(second.kek_ids()) == 2
    assert open_card(sealed, token="pm_1", merchant_id="m", provider=second).number == "4242424242424242"
    doc = orjson.loads(path.read_bytes())
    assert doc["current"] == 2 and sorted(doc["keys"]) == ["1", "2"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_process_sees_versions_rotated_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "kek.json"
    api, cli = FileKeyProvider(path), FileKeyProvider(path)
    api.current_kek_id()
    cli.rotate()
    sealed = seal_card(number="4242424242424242", exp_month=1, exp_year=2031, token="t", merchant_id="m", provider=cli)
    # the api provider has not loaded v2 yet: it reloads the file when it meets the unknown id
    assert open_card(sealed, token="t", merchant_id="m", provider=api).exp_year == 2031


def test_concurrent_rotations_never_lose_a_version(tmp_path: Path) -> None:
    path = tmp_path / "kek.json"
    FileKeyProvider(path).current_kek_id()
    providers = [FileKeyProvider(path) for _ in range(8)]
    ids: list[str] = []
    lock = threading.Lock()

    def rotate(provider: FileKeyProvider) -> None:
        kek_id = provider.rotate()
        with lock:
            ids.append(kek_id)

    threads = [threading.Thread(target=rotate, args=(p,)) for p in providers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 8
    assert len(FileKeyProvider(path).kek_ids()) == 9


def test_repr_shows_no_key_material(tmp_path: Path) -> None:
    provider = FileKeyProvider(tmp_path / "kek.json")
    provider.current_kek_id()
    key_b64 = orjson.loads((tmp_path / "kek.json").read_bytes())["keys"]["1"]["key"]
    assert key_b64 not in repr(provider)
