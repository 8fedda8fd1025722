"""`livekit-demo serve` as a real process: it prints its URL, answers real HTTP, and keeps rooms and tokens."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from livekit_demo.cli import main
from livekit_demo.passwords import verify_password

from server_process import login_headers, serve_process


def test_the_readme_walkthrough_against_a_real_process(tmp_path: Path) -> None:
    with serve_process(tmp_path, "--storage", "memory") as server, httpx.Client(base_url=server.url, timeout=10) as http:
        url = server.url
        assert url.startswith("http://127.0.0.1:")
        assert not url.endswith("/")  # SPEC 1 "Base URLs": clients build base + "/api/..."
        assert http.get("/").text.rstrip("\n").endswith(f"Enter this base URL in a client: {url}")
        # What a client makes of a pasted URL that did end in "/": answered all the same.
        assert http.post(f"{url}//api/v1/live/login", json={"username": "ann", "password": "ann"}).json()["code"] == 200
        auth = login_headers(http, "ann")
        room = http.post("/api/v1/live/create", json={"title": "demo", "anchor": "ann"}, headers=auth).json()
        started = http.post("/api/v1/live/start", json={"id": room["id"], "user_id": "ann"}, headers=auth).json()
        assert started["status"] == 1 and started["push_url_info"]["rtmp_url"].startswith("rtmp://push.example.com/live/")
        assert http.post("/api/v1/live/stop", json={"id": room["id"], "user_id": "ann"}, headers=auth).json()["status"] == 2
        assert http.post("/api/v1/live/delete", json={"id": room["id"], "user_id": "ann"}, headers=auth).status_code == 200
        r = http.post("/api/v1/live/get", json={"id": room["id"], "user_id": "ann"}, headers=auth)
        assert r.status_code == 404 and r.json()["code"] == 404


def test_serve_logs_one_line_per_request_without_tokens(tmp_path: Path) -> None:
    with serve_process(tmp_path, "--storage", "memory") as server, httpx.Client(base_url=server.url, timeout=10) as http:
        auth = login_headers(http, "ann")
        token = auth["Authorization"].split()[1]
        room = http.post(f"/api/v1/live/create?token={token}", json={"title": "demo", "anchor": "ann"}).json()
        http.post("/api/v1/live/get", json={"id": room["id"], "user_id": "ann"}, headers={"Authorization": "Bearer nonsense"})
        deadline = time.monotonic() + 10
        while server.stderr().count(" ms user=") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        log = server.stderr()
    lines = [line for line in log.splitlines() if "livekit_demo.requests" in line]
    assert len(lines) == 3, log
    assert re.search(r" INFO livekit_demo\.requests: POST /login 200 [0-9.]+ ms user=ann$", lines[0]), lines
    assert re.search(r": POST /api/v1/live/create 200 [0-9.]+ ms user=ann$", lines[1]), lines
    assert re.search(r": POST /api/v1/live/get 401 [0-9.]+ ms user=-$", lines[2]), lines
    assert token not in log and "nonsense" not in log


def test_tinydb_rooms_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "rooms.json"
    with serve_process(tmp_path, "--storage", str(data)) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        auth = login_headers(http, "ann")
        room = http.post("/api/v1/live/create", json={"title": "kept", "anchor": "ann"}, headers=auth).json()
    secret_files = [p for p in tmp_path.iterdir() if "secret" in p.name]
    assert secret_files and all(p.stat().st_mode & 0o077 == 0 for p in secret_files)
    with serve_process(tmp_path, "--storage", str(data)) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        # the same token still works: the secret was kept next to the data file
        got = http.post("/api/v1/live/get", json={"id": room["id"], "user_id": "ann"}, headers=auth)
        assert got.status_code == 200 and got.json()["title"] == "kept"


def test_serve_refuses_bad_settings_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--storage", str(tmp_path / "x.json"), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "server.workers" in err and "tinydb" in err and "Traceback" not in err
    config = tmp_path / "bad.yaml"
    config.write_text("auth:\n  token_ttl: soon\n")
    assert main(["serve", "--config", str(config)]) == 2
    assert "auth.token_ttl" in capsys.readouterr().err


def test_hash_password_from_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("correct horse\n"))
    assert main(["hash-password", "--stdin"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("scrypt$") and verify_password("correct horse", printed)


def _serve_output(monkeypatch: pytest.MonkeyPatch, **server: object) -> tuple[str, int]:
    """What `serve` prints before it runs uvicorn (run replaced by closing the socket), and the bound port."""
    import io

    import uvicorn

    from livekit_demo import serving
    from livekit_demo.settings import Settings

    bound: list[int] = []

    def run(self: object, sockets: list) -> None:
        bound.append(sockets[0].getsockname()[1])
        for sock in sockets:
            sock.close()

    monkeypatch.setattr(uvicorn.Server, "run", run)
    monkeypatch.setattr(serving, "local_addresses", lambda: ["192.0.2.7", "198.51.100.9"])
    out = io.StringIO()
    serving.serve(Settings.build(env={}, storage="memory", server={"port": 0, **server}), out=out)
    return out.getvalue(), bound[0]


def test_serve_on_0_0_0_0_prints_one_url_per_address_and_warns_of_the_demo_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    printed, port = _serve_output(monkeypatch, host="0.0.0.0")
    urls = [line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("Enter this base URL")]
    # a phone cannot use 0.0.0.0: one URL per non-loopback address of the machine
    assert urls == [f"http://192.0.2.7:{port}", f"http://198.51.100.9:{port}"]
    assert sum("warning" in line and "demo login" in line for line in printed.splitlines()) == 1


def test_serve_on_loopback_prints_its_url_without_the_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    printed, port = _serve_output(monkeypatch, host="127.0.0.1")
    assert f"Enter this base URL in a client: http://127.0.0.1:{port}\n" in printed  # no trailing slash
    assert "warning" not in printed


def test_local_addresses_are_never_loopback() -> None:
    import ipaddress

    from livekit_demo.serving import base_urls, local_addresses

    assert all(not ipaddress.ip_address(a).is_loopback for a in local_addresses())
    assert base_urls("0.0.0.0", 8080) and all("0.0.0.0" not in url for url in base_urls("0.0.0.0", 8080))


def test_hash_password_reads_without_echo_twice(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import getpass

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    answers = iter(["s3cret", "s3cret", "one", "other"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))  # getpass reads without echo
    assert main(["hash-password"]) == 0
    printed = capsys.readouterr().out.strip()
    assert verify_password("s3cret", printed) and "s3cret" not in printed
    assert main(["hash-password"]) == 2
    assert "differ" in capsys.readouterr().err


def test_hash_password_at_end_of_input_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import getpass

    def ctrl_d(prompt: str = "") -> str:
        raise EOFError

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(getpass, "getpass", ctrl_d)
    assert main(["hash-password"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no password given") and "--stdin" in err and "\n" not in err


def test_hash_password_piped_without_stdin_flag_says_to_add_it() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "livekit_demo", "hash-password"], input="s3cret\n", capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: the password comes from a pipe: add --stdin (echo PASSWORD | livekit-demo hash-password --stdin)"
    ]


def test_serve_on_the_lan_shows_a_qr_code_of_the_first_url(monkeypatch: pytest.MonkeyPatch) -> None:
    printed, port = _serve_output(monkeypatch, host="0.0.0.0")
    lines = printed.splitlines()
    assert lines[0].startswith("warning: listening on 0.0.0.0: the demo login rule is on")
    assert f"Enter this base URL in a client: http://192.0.2.7:{port}" in lines
    at = lines.index(f"Scan it on a phone (http://192.0.2.7:{port}):")
    assert len(lines) - at > 10 and set("".join(lines[at + 1 :])) <= set("█▀▄ ")


def test_serve_on_loopback_shows_no_qr_code(monkeypatch: pytest.MonkeyPatch) -> None:
    printed, _ = _serve_output(monkeypatch, host="127.0.0.1")
    assert "Scan it" not in printed and "█" not in printed
