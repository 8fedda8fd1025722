"""What a browser tab's Python (Pyodide) lacks, simulated here: scrypt and pbkdf2_hmac, os.link, fcntl.flock."""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from pathlib import Path

import pytest

from livekit_demo import LivekitDemoError, SettingsError, StorageError, passwords
from livekit_demo.client import connect
from livekit_demo.passwords import BROWSER_ITERATIONS, hash_password, unsupported_reason, verify_password
from livekit_demo.runner import start_server
from livekit_demo.settings import Settings
from livekit_demo.storage import _journal
from livekit_demo.storage._files import load_or_create_secret
from livekit_demo.storage.tinydb import TinyDBStore


@pytest.fixture
def no_openssl_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """hashlib as Pyodide has it: sha256 and hmac, no scrypt, no pbkdf2_hmac."""
    monkeypatch.delattr(hashlib, "scrypt")
    monkeypatch.delattr(hashlib, "pbkdf2_hmac")


# -- passwords ------------------------------------------------------------------------------------


def test_the_pure_python_pbkdf2_is_rfc_pbkdf2_hmac_sha256(no_openssl_hashes: None) -> None:
    # RFC 7914 section 11's PBKDF2-HMAC-SHA256 vector: P="passwd", S="salt", c=1, dkLen=64.
    expected = bytes.fromhex(
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        "49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
    )
    assert passwords._pbkdf2_sha256(b"passwd", b"salt", 1, 64) == expected


def test_the_pure_python_pbkdf2_matches_hashlib_for_many_rounds_and_odd_lengths() -> None:
    native = hashlib.pbkdf2_hmac
    for rounds, length in [(2, 32), (1000, 20), (4096, 45)]:
        with pytest.MonkeyPatch.context() as patch:
            patch.delattr(hashlib, "pbkdf2_hmac")
            pure = passwords._pbkdf2_sha256(b"secret", b"NaCl salt", rounds, length)
        assert pure == native("sha256", b"secret", b"NaCl salt", rounds, length)


def test_without_openssl_hashes_are_pbkdf2_and_verify(no_openssl_hashes: None) -> None:
    made = hash_password("s3cret")
    assert made.startswith(f"pbkdf2_sha256${BROWSER_ITERATIONS}$")
    assert verify_password("s3cret", made) and not verify_password("s3cre", made)


def test_a_pbkdf2_hash_made_with_openssl_verifies_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", b"pw", salt, 1000, 32)
    stored = f"pbkdf2_sha256$1000${passwords._b64(salt)}${passwords._b64(digest)}"
    monkeypatch.delattr(hashlib, "pbkdf2_hmac")
    assert verify_password("pw", stored) and not verify_password("pW", stored)


def test_an_scrypt_hash_is_refused_by_settings_with_the_reason(no_openssl_hashes: None) -> None:
    stored = "scrypt$n=16384,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + "A" * 43
    assert unsupported_reason(stored) is not None and "hashlib.scrypt" in str(unsupported_reason(stored))
    with pytest.raises(SettingsError, match=r"auth\.users\.boss.*scrypt.*hash_password.*demo rule"):
        Settings.build(env={}, auth={"users": {"boss": stored}})
    with pytest.raises(ValueError, match="scrypt"):
        verify_password("pw", stored)


def test_with_scrypt_present_nothing_is_unsupported() -> None:
    assert unsupported_reason(hash_password("pw")) is None


def test_a_browser_made_user_logs_in_through_the_in_process_server(no_openssl_hashes: None) -> None:
    with start_server(storage="memory", env={}, keep=True, inprocess=True, auth={"users": {"boss": hash_password("pw")}}) as server:
        assert connect(server, "boss", "pw").login_result is not None
        assert connect(server, "ann").login_result is not None  # the demo rule, as ever


# -- files and locks ------------------------------------------------------------------------------


def test_the_secret_file_is_made_without_os_link(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delattr(os, "link")
    path = tmp_path / "data" / "rooms.json.secret"
    first = load_or_create_secret(path, lambda: "first-secret")
    assert first == "first-secret" and path.read_text() == "first-secret"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert load_or_create_secret(path, lambda: "second") == "first-secret"  # kept, never replaced
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_a_file_system_refusing_hard_links_gets_the_secret_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def link(source: object, target: object) -> None:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(os, "link", link)
    path = tmp_path / "rooms.json.secret"
    assert load_or_create_secret(path, lambda: "made") == "made" == path.read_text()


def test_without_os_link_a_taken_name_keeps_the_winners_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delattr(os, "link")
    path = tmp_path / "rooms.json.secret"

    def make() -> str:
        path.write_text("the winner")  # another writer gets there between our read and our write
        return "the loser"

    assert load_or_create_secret(path, make) == "the winner"


@pytest.mark.parametrize("how", ["no flock", "ENOSYS"])
def test_tinydb_works_where_files_cannot_be_locked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, how: str) -> None:
    if how == "no flock":
        monkeypatch.delattr(_journal.fcntl, "flock")
    else:

        def flock(fd: int, operation: int) -> None:
            raise OSError(errno.ENOSYS, "Function not implemented")

        monkeypatch.setattr(_journal.fcntl, "flock", flock)
    path = tmp_path / "rooms.json"
    with start_server(storage=str(path), env={}, keep=True, inprocess=True) as server:
        client = connect(server, "ann")
        room = client.create("kept")
        # One tab, one writer: a second store on the same file in this process is still refused.
        with pytest.raises(StorageError, match="already open in this process"):
            TinyDBStore(path)
        server.restart()
        assert [r["id"] for r in client.list()] == [room["id"]]


def test_a_lock_failing_for_another_reason_is_a_storage_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def flock(fd: int, operation: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(_journal.fcntl, "flock", flock)
    with pytest.raises(StorageError, match=r"cannot lock .*rooms\.json: Input/output error"):
        TinyDBStore(tmp_path / "rooms.json")


# -- packages a browser tab does without ------------------------------------------------------------


def test_uvicorn_and_pyyaml_are_not_requirements_in_a_browser_tab() -> None:
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(line) for line in project["dependencies"]]
    browser = {"sys_platform": "emscripten", "platform_system": "Emscripten"}
    needed_there = {r.name for r in requirements if r.marker is None or r.marker.evaluate(browser)}
    needed_here = {r.name for r in requirements if r.marker is None or r.marker.evaluate()}
    assert needed_here - needed_there == {"uvicorn", "pyyaml", "orjson"}
    assert {"starlette", "tinydb", "pyjwt", "httpx"} <= needed_there


def test_without_pyyaml_a_yaml_config_says_what_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now fails, as in a tab
    config = tmp_path / "livekit.yaml"
    config.write_text("storage: memory\n")
    with pytest.raises(SettingsError, match=r"config_file.*PyYAML.*JSON"):
        Settings.build(str(config), env={})
    json_config = tmp_path / "livekit.json"
    json_config.write_text('{"storage": "memory"}')
    assert Settings.build(str(json_config), env={}).storage.type == "memory"


def test_without_uvicorn_serving_says_what_is_missing_and_in_process_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(LivekitDemoError, match=r"needs uvicorn.*inprocess=True"):
        start_server(storage="memory", env={}, keep=True)
    with start_server(storage="memory", env={}, keep=True, inprocess=True) as server:
        assert connect(server, "ann").list() == []


def test_without_orjson_the_api_reads_and_writes_the_same_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from livekit_demo import api, jsonbytes

    sample = {"title": "Ünïcode ✓", "n": [1, 2, 3], "nested": {"ok": True, "none": None}}
    body = jsonbytes.dumps(sample)
    assert api._loads(body) == sample
    for module in (api, jsonbytes):
        monkeypatch.setattr(module, "orjson", None)  # as in a tab, where the module is missing
    assert jsonbytes.dumps(sample) == body and api._loads(body) == sample
    with start_server(storage="memory", env={}, keep=True, inprocess=True) as server:
        assert connect(server, "ann").create("plain json")["title"] == "plain json"
