"""`livekit-demo lite`, the parts that need no network: our wheel, the browser's requirements, the lock, `--check`."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from livekit_demo import lite
from livekit_demo.cli import main

BROWSER = lite._browser_environment({"python": "3.14.2"})


def test_our_wheel_holds_the_package_the_notebooks_and_a_true_record(tmp_path: Path) -> None:
    wheel = lite.pack_own_wheel(tmp_path)
    assert wheel.name == "livekit_demo-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {"livekit_demo/__init__.py", "livekit_demo/inprocess.py", "livekit_demo/storage/room_infos.sql"} <= names
        assert "livekit_demo/notebooks/01_quickstart.ipynb" in names
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        record = archive.read("livekit_demo-0.1.0.dist-info/RECORD").decode().splitlines()
        for line in record:
            path, digest, size = line.rsplit(",", 2)
            if digest:
                data = archive.read(path)
                assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert int(size) == len(data)
        assert len(record) == len(names)
    meta = lite._wheel_metadata(wheel)
    assert (meta.name, meta.version, meta.top_level) == ("livekit_demo", "0.1.0", ["livekit_demo"])


def test_in_the_browser_uvicorn_pyyaml_jupyterlab_and_sql_drivers_are_left_out(tmp_path: Path) -> None:
    meta = lite._wheel_metadata(lite.pack_own_wheel(tmp_path))
    base = {r.name for r in lite._requirements(meta, BROWSER)}
    assert base == {"starlette", "tinydb", "pyjwt", "httpx"}
    with_widgets = {r.name for r in lite._requirements(meta, BROWSER, extras=lite.BROWSER_EXTRAS)}
    assert with_widgets == base | {"ipywidgets", "segno"}  # the lab extra, less jupyterlab
    here = {r.name for r in lite._requirements(meta, {**BROWSER, "sys_platform": "linux", "platform_system": "Linux"})}
    assert {"uvicorn", "pyyaml", "orjson"} <= here


def _wheel(folder: Path, name: str, version: str, requires: list[str] | tuple[str, ...] = (), top: str | None = None) -> Path:
    path = folder / f"{name}-{version}-py3-none-any.whl"
    module = top or name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{module}/__init__.py", "")
        meta = [f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)]
        archive.writestr(f"{name}-{version}.dist-info/METADATA", "\n".join(meta) + "\n")
    return path


def test_resolving_takes_the_newest_matching_cached_wheels_transitively_and_only_browser_ones(tmp_path: Path) -> None:
    cache = tmp_path / "wheels"
    cache.mkdir()
    _wheel(cache, "alpha", "1.0", ["beta>=2", "gamma; sys_platform != 'emscripten'", "ipykernel"])
    _wheel(cache, "alpha", "2.0", ["beta>=2"])
    _wheel(cache, "beta", "1.5")
    _wheel(cache, "beta", "2.1")
    _wheel(cache, "beta", "3.0")
    roots = [lite._requirement("alpha<2"), lite._requirement("beta<3")]
    chosen = lite._resolve(roots, cache, BROWSER, offline=True, log=print)
    assert {k: v.name for k, v in chosen.items()} == {"alpha": "alpha-1.0-py3-none-any.whl", "beta": "beta-2.1-py3-none-any.whl"}
    with pytest.raises(lite.LivekitDemoError, match=r"missing from the cache.*delta"):
        lite._resolve([lite._requirement("delta")], cache, BROWSER, offline=True, log=print)


def test_the_lock_lists_exactly_the_bundled_wheels_with_their_hashes_and_bundled_depends(tmp_path: Path) -> None:
    one = _wheel(tmp_path, "one_pkg", "1.0", ["two", "elsewhere"], top="one")
    two = _wheel(tmp_path, "two", "2.0")
    lock = lite._lock_file({"python": "3.14.2"}, {"one-pkg": one, "two": two}, BROWSER)
    assert lock["info"] == {"python": "3.14.2"} and set(lock["packages"]) == {"one-pkg", "two"}
    entry = lock["packages"]["one-pkg"]
    assert entry["file_name"] == one.name and entry["sha256"] == hashlib.sha256(one.read_bytes()).hexdigest()
    assert entry["depends"] == ["two"] and entry["imports"] == ["one"] and entry["name"] == "one_pkg"


# -- --check on small made-up sites -----------------------------------------------------------------


def make_site(root: Path) -> Path:
    """The smallest site check_site accepts: config, runtime, a lock naming a wheel beside it, an index."""
    pyodide = root / "static" / "pyodide"
    pyodide.mkdir(parents=True)
    (pyodide / "pyodide.mjs").write_text("export {}")
    wheel = _wheel(pyodide, "tinydb", "4.9.0")
    lock = lite._lock_file({"python": "3.14.2"}, {"tinydb": wheel}, BROWSER)
    (pyodide / "pyodide-lock.json").write_text(json.dumps(lock))
    (root / "jupyter-lite.json").write_text(json.dumps(lite._lite_config(["tinydb"])))
    pypi = root / "extensions" / "kernel" / "static" / "pypi"
    pypi.mkdir(parents=True)
    _wheel(pypi, "piplite", "0.8.6")
    (pypi / "all.json").write_text(json.dumps({"piplite": {"releases": {"0.8.6": [{"url": "./piplite-0.8.6-py3-none-any.whl"}]}}}))
    return root


def edit_json(path: Path, change: object) -> None:
    data = json.loads(path.read_text())
    change(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))


def kernel(data: dict) -> dict:
    return data["jupyter-config-data"]["litePluginSettings"][lite.KERNEL_SETTINGS]


def test_a_self_contained_site_passes_the_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site(tmp_path / "site")
    assert lite.check_site(site) == []
    assert main(["lite", str(site), "--check"]) == 0
    assert "self-contained" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("breakage", "words"),
    [
        (lambda s: edit_json(s / "jupyter-lite.json", lambda d: kernel(d).update(pyodideUrl="https://cdn.example/pyodide.mjs")), "pyodideUrl"),
        (lambda s: edit_json(s / "jupyter-lite.json", lambda d: kernel(d).pop("disablePyPIFallback")), "PyPI"),
        (lambda s: edit_json(s / "jupyter-lite.json", lambda d: kernel(d)["loadPyodideOptions"].update(lockFileURL="x")), "lockFileURL"),
        (lambda s: edit_json(s / "jupyter-lite.json", lambda d: d.update(faviconUrl="//cdn.example/icon.png")), "faviconUrl"),
        (lambda s: edit_json(s / "jupyter-lite.json", lambda d: kernel(d)["loadPyodideOptions"]["packages"].append("numpy")), "'numpy' is not in the lock"),
        (lambda s: (s / "static" / "pyodide" / "pyodide-lock.json").unlink(), "CDN"),
        (lambda s: next((s / "static" / "pyodide").glob("*.whl")).unlink(), "tinydb"),
        (lambda s: edit_json(s / "static" / "pyodide" / "pyodide-lock.json", lambda d: d["packages"]["tinydb"].update(file_name="https://files.example/t.whl")), "tinydb"),
        (lambda s: edit_json(next(s.rglob("all.json")), lambda d: d["piplite"]["releases"]["0.8.6"][0].update(url="https://pypi.example/p.whl")), "all.json"),
    ],
    ids=["cdn-runtime", "pypi-fallback", "lock-url", "absolute-config-url", "preload-not-bundled", "no-lock", "wheel-missing", "remote-wheel", "remote-index"],
)
def test_check_finds_what_would_be_fetched_from_outside(tmp_path: Path, capsys: pytest.CaptureFixture[str], breakage: object, words: str) -> None:
    site = make_site(tmp_path / "site")
    breakage(site)  # type: ignore[operator]
    problems = lite.check_site(site)
    assert any(words in p for p in problems), problems
    assert main(["lite", str(site), "--check"]) == 1
    assert "fetches from outside itself" in capsys.readouterr().out


def test_check_of_a_folder_that_is_no_site_fails(tmp_path: Path) -> None:
    assert lite.check_site(tmp_path) == [f"{tmp_path.resolve()} holds no jupyter-lite.json: not a built site"]


def test_building_into_a_folder_holding_something_else_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("jupyterlite_pyodide_kernel")
    (tmp_path / "thesis.tex").write_text("precious")
    assert main(["lite", str(tmp_path), "--offline", "--cache", str(tmp_path / "cache")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "thesis.tex").read_text() == "precious"
