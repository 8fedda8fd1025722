"""`livekit-demo lite DIR`: a JupyterLite site with the package, its notebooks and Python itself, served from anywhere.

The site is static files: JupyterLab, the Pyodide runtime (npm's ``pyodide`` package, the version
the ``jupyterlite-pyodide-kernel`` of this environment is made for), this package packed as a wheel
from its installed files, and every pure-Python wheel it and the kernel need. A Pyodide lock file
lists exactly those wheels, the PyPI fallback is switched off, so the site never fetches anything
from elsewhere: it runs with the network cut off, and from any static host.

Building needs the ``lite`` extra (jupyterlite-core, jupyterlite-pyodide-kernel). The runtime and
the wheels are fetched once into a cache folder with the ordinary clients (``npm pack``,
``pip download``); with ``offline=True`` nothing is fetched and a missing piece is an error.
`check_site` tells whether a built site would fetch anything from outside itself.
"""

from __future__ import annotations

import email.parser
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .exceptions import LivekitDemoError
from .lab import bundled_notebooks

__all__ = ["LiteSite", "build_site", "check_site", "default_cache", "pyodide_version", "serve_hint"]

PACKAGE = "livekit_demo"
#: The kernel extension ships these itself (small stand-ins and its own kernel): never bundled again.
KERNEL_PROVIDES = frozenset({"ipykernel", "piplite", "pyodide-kernel", "widgetsnbextension"})
#: What the kernel installs as it starts (pyodide-kernel needs comm and ipython; micropip installs the rest).
KERNEL_NEEDS = ("micropip", "ipython", "jedi", "comm")
#: Extras of ours that make sense in a tab: the widgets. Not jupyterlab (the site is JupyterLab), nor matplotlib (no pure wheel), nor SQL drivers.
BROWSER_EXTRAS = ("lab",)
NOT_IN_A_TAB = frozenset({"jupyterlab", "matplotlib"})  # the audience chart says it needs matplotlib; npm has no browser build of it
_PURE = re.compile(r"-(py3|py2\.py3)-none-any\.whl$")
KERNEL_SETTINGS = "@jupyterlite/pyodide-kernel-extension:kernel"


@dataclass
class LiteSite:
    """A built site: where it is, the Pyodide version and the wheels its lock file lists."""

    path: Path
    pyodide: str
    wheels: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Bytes of every file of the site (what a first visit may load is less: JupyterLab loads lazily)."""
        return sum(f.stat().st_size for f in self.path.rglob("*") if f.is_file())


def default_cache() -> Path:
    """Where the runtime tarball and the downloaded wheels are kept between builds."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "livekit_demo" / "lite"


def pyodide_version() -> str:
    """The Pyodide version this environment's jupyterlite-pyodide-kernel is made for."""
    try:
        from jupyterlite_pyodide_kernel.constants import PYODIDE_VERSION
    except ImportError:
        raise LivekitDemoError('building a JupyterLite site needs the lite extra: pip install "livekit_demo[lite]"') from None
    return str(PYODIDE_VERSION)


def serve_hint(path: Path) -> str:
    """How to look at a built site (any static file server will do)."""
    return f"python -m http.server --directory {path} 8000   # then open http://127.0.0.1:8000/lab/index.html"


# -- the build ---------------------------------------------------------------------------------


def build_site(out: Path, *, cache: Path | None = None, offline: bool = False, log: Any = print) -> LiteSite:
    """Build the site into `out` (emptied first if it holds an earlier build; refused if it holds anything else)."""
    version = pyodide_version()
    cache = (cache or default_cache()).resolve()
    out = out.resolve()
    _prepare_output(out)
    runtime = _runtime_tarball(cache, version, offline=offline, log=log)
    with tempfile.TemporaryDirectory(prefix="livekit_demo-lite-") as tmp:
        # A fresh lite dir each time: a stale .jupyterlite.doit.db makes `jupyter lite build` skip
        # tasks silently (the pyodide config among them, which then falls back to a CDN).
        staging = Path(tmp) / "lite"
        pyodide_dir = staging / "static" / "pyodide"
        upstream_lock = _unpack_runtime(runtime, pyodide_dir)
        environment = _browser_environment(upstream_lock["info"])
        own = pack_own_wheel(pyodide_dir)
        own_meta = _wheel_metadata(own)
        roots = [*_requirements(own_meta, environment, extras=BROWSER_EXTRAS), *map(_requirement, KERNEL_NEEDS)]
        wheels = _resolve(roots, cache / "wheels", environment, offline=offline, log=log)
        for wheel in wheels.values():
            shutil.copy2(wheel, pyodide_dir / wheel.name)
        bundled = {**{_canonical(m.name): pyodide_dir / w.name for m, w in ((_wheel_metadata(w), w) for w in wheels.values())}}
        bundled[_canonical(PACKAGE)] = own
        lock = _lock_file(upstream_lock["info"], bundled, environment)
        (pyodide_dir / "pyodide-lock.json").write_text(json.dumps(lock, indent=1, sort_keys=True))
        preload = [*KERNEL_NEEDS, _canonical(PACKAGE), *(_canonical(r.name) for r in _requirements(own_meta, environment, extras=BROWSER_EXTRAS, only_extras=True))]
        (staging / "jupyter-lite.json").write_text(json.dumps(_lite_config(preload), indent=1))
        contents = staging / "notebooks"
        contents.mkdir()
        for notebook in bundled_notebooks():
            _blank_copy(notebook, contents / notebook.name)
        _jupyter_lite_build(staging, out, contents, log=log)
    problems = check_site(out)
    if problems:
        raise LivekitDemoError("the built site would fetch from outside itself:\n  " + "\n  ".join(problems))
    return LiteSite(out, version, sorted(p.name for p in bundled.values()))


def _blank_copy(source: Path, target: Path) -> None:
    """The notebook without outputs and widget state: saved ones show a server of another machine (http://127.0.0.1:...)."""
    notebook = json.loads(source.read_text(encoding="utf-8"))
    notebook.get("metadata", {}).pop("widgets", None)
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    target.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _prepare_output(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        if not (out / "jupyter-lite.json").exists():
            raise LivekitDemoError(f"{out} is not empty and holds no earlier site: give an empty or new folder")
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)


def _runtime_tarball(cache: Path, version: str, *, offline: bool, log: Any) -> Path:
    """npm's ``pyodide`` package of `version`, from the cache or ``npm pack``."""
    tarball = cache / f"pyodide-{version}.tgz"
    if tarball.exists():
        return tarball
    if offline:
        raise LivekitDemoError(f"the Pyodide runtime is not in the cache ({tarball}); build once without --offline")
    npm = shutil.which("npm")
    if npm is None:
        raise LivekitDemoError("fetching the Pyodide runtime needs npm (from Node.js); or put pyodide-<version>.tgz from `npm pack` in the cache")
    cache.mkdir(parents=True, exist_ok=True)
    log(f"fetching the Pyodide runtime: npm pack pyodide@{version}")
    done = subprocess.run([npm, "pack", f"pyodide@{version}", "--pack-destination", str(cache)], capture_output=True, text=True)
    if done.returncode != 0 or not tarball.exists():
        raise LivekitDemoError(f"npm pack pyodide@{version} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return tarball


def _unpack_runtime(tarball: Path, target: Path) -> dict[str, Any]:
    """The runtime files into `target` (no typings, maps or consoles: the site does not load them); the upstream lock file."""
    target.mkdir(parents=True)
    wanted = re.compile(r"package/(pyodide\.m?js|pyodide\.asm\.(m?js|wasm)|python_stdlib\.zip|pyodide-lock\.json|package\.json)$")
    lock: dict[str, Any] | None = None
    with tarfile.open(tarball) as archive:
        for member in archive.getmembers():
            if not (member.isfile() and wanted.match(member.name)):
                continue
            source = archive.extractfile(member)
            assert source is not None
            data = source.read()
            if member.name.endswith("pyodide-lock.json"):
                lock = json.loads(data)  # only its `info` is kept: the packages it lists are not in the npm package
                continue
            (target / Path(member.name).name).write_bytes(data)
    if lock is None or not (target / "pyodide.mjs").exists():
        raise LivekitDemoError(f"{tarball} is not npm's pyodide package (no pyodide.mjs or pyodide-lock.json)")
    return lock


def _browser_environment(info: dict[str, Any]) -> dict[str, str]:
    """PEP 508 marker values of Pyodide's Python, so requirements are picked as micropip would pick them there."""
    full = str(info.get("python", "3.12.0"))
    return {
        "implementation_name": "cpython",
        "implementation_version": full,
        "os_name": "posix",
        "platform_machine": "wasm32",
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Emscripten",
        "platform_version": "",
        "python_full_version": full,
        "python_version": ".".join(full.split(".")[:2]),
        "sys_platform": "emscripten",
        "extra": "",
    }


def _jupyter_lite_build(staging: Path, out: Path, contents: Path, *, log: Any) -> None:
    command = [sys.executable, "-m", "jupyterlite_core", "build", "--lite-dir", str(staging), "--output-dir", str(out), "--contents", str(contents),
               "--no-sourcemaps"]  # fmt: skip  (half the size of the site, and nothing a learner needs)
    log("building the site: jupyter lite build")
    # No network for the build itself: a configured JUPYTERLITE_PYODIDE_URL would make it download one.
    env = {k: v for k, v in os.environ.items() if k != "JUPYTERLITE_PYODIDE_URL"}
    done = subprocess.run(command, cwd=staging, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise LivekitDemoError(f"jupyter lite build failed:\n{(done.stdout + done.stderr).strip()[-2000:]}")


def _lite_config(preload: list[str]) -> dict[str, Any]:
    kernel = {
        "pyodideUrl": "./static/pyodide/pyodide.mjs",
        "disablePyPIFallback": True,
        # Loaded as the kernel starts, from the site's own lock file: `import livekit_demo` just works.
        "loadPyodideOptions": {"packages": list(dict.fromkeys(preload))},
    }
    return {
        "jupyter-lite-schema-version": 0,
        "jupyter-config-data": {"appName": "livekit_demo", "litePluginSettings": {KERNEL_SETTINGS: kernel}},
    }


# -- wheels ------------------------------------------------------------------------------------


def pack_own_wheel(dest: Path) -> Path:
    """This package, as installed (notebooks included), packed into a pure-Python wheel in `dest`."""
    package = Path(__file__).resolve().parent
    name = f"{PACKAGE}-{__version__}"
    files: list[tuple[str, bytes]] = [
        (f"{PACKAGE}/{path.relative_to(package).as_posix()}", path.read_bytes())
        for path in sorted(package.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    if not (package / "notebooks").is_dir():  # a source checkout: the notebooks sit beside the package
        files += [(f"{PACKAGE}/notebooks/{nb.name}", nb.read_bytes()) for nb in bundled_notebooks()]
    info = f"{name}.dist-info"
    files.append((f"{info}/METADATA", _own_metadata(package).encode()))
    files.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: livekit_demo.lite\nRoot-Is-Purelib: true\nTag: py3-none-any\n"))
    files.append((f"{info}/top_level.txt", f"{PACKAGE}\n".encode()))
    record = [f"{path},sha256={_b64_digest(data)},{len(data)}" for path, data in files] + [f"{info}/RECORD,,"]
    files.append((f"{info}/RECORD", ("\n".join(record) + "\n").encode()))
    wheel = dest / f"{name}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in files:
            archive.writestr(zipfile.ZipInfo(member, date_time=(2020, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return wheel


def _own_metadata(package: Path) -> str:
    """METADATA for our wheel: requirements from the checkout's pyproject.toml when there is one, else the installed ones."""
    requires = _checkout_requirements(package.parent / "pyproject.toml")
    if requires is None:
        requires = importlib.metadata.requires(PACKAGE) or []
    extras = sorted({m.group(1) for r in requires if (m := re.search(r"extra\s*==\s*['\"]([^'\"]+)", r))})
    lines = ["Metadata-Version: 2.1", f"Name: {PACKAGE}", f"Version: {__version__}"]
    lines += [f"Provides-Extra: {e}" for e in extras] + [f"Requires-Dist: {r}" for r in requires]
    return "\n".join(lines) + "\n"


def _checkout_requirements(pyproject: Path) -> list[str] | None:
    try:
        import tomllib
    except ImportError:  # Python 3.10: the installed metadata it is
        return None
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, ValueError):
        return None
    if project.get("name") != PACKAGE:
        return None
    requires = list(project.get("dependencies", []))
    for extra, items in project.get("optional-dependencies", {}).items():
        for item in items:
            base, _, marker = item.partition(";")
            requires.append(f"{base.strip()}; ({marker.strip()}) and extra == '{extra}'" if marker.strip() else f"{base.strip()}; extra == '{extra}'")
    return requires


def _b64_digest(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@dataclass
class _Meta:
    name: str
    version: str
    requires: list[str]
    top_level: list[str]


def _wheel_metadata(wheel: Path) -> _Meta:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(archive.read(info).decode("utf-8"))
        top_file = info.replace("METADATA", "top_level.txt")
        if top_file in names:
            top = archive.read(top_file).decode().split()
        else:
            top = sorted({_import_name(n) for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))} - {""})
    return _Meta(str(meta["Name"]), str(meta["Version"]), list(meta.get_all("Requires-Dist") or []), top)


def _import_name(path: str) -> str:
    first = path.split("/")[0]
    if "/" not in path:
        return first[:-3] if first.endswith(".py") else ""
    return first


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement(text: str) -> Any:
    from packaging.requirements import Requirement

    return Requirement(text)


def _requirements(meta: _Meta, environment: dict[str, str], *, extras: Iterable[str] = (), only_extras: bool = False) -> list[Any]:
    """`meta`'s requirements that apply in the browser, with `extras`; `only_extras`: just those the extras add."""
    chosen = []
    for line in meta.requires:
        requirement = _requirement(line)
        if _canonical(requirement.name) in NOT_IN_A_TAB:
            continue
        marker = requirement.marker
        base = marker is None or marker.evaluate({**environment, "extra": ""})
        extra = marker is not None and any(marker.evaluate({**environment, "extra": e}) for e in extras)
        if (extra and not base) if only_extras else (base or extra):
            chosen.append(requirement)
    return chosen


def _resolve(roots: list[Any], cache: Path, environment: dict[str, str], *, offline: bool, log: Any) -> dict[str, Path]:
    """Every wheel the `roots` need in the browser, transitively: pure-Python ones, from the cache or ``pip download``."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    cache.mkdir(parents=True, exist_ok=True)
    wanted: dict[str, Any] = {}  # name -> SpecifierSet, all constraints seen so far
    extras: dict[str, set[str]] = {}
    chosen: dict[str, Path] = {}
    pending = list(roots)
    while pending:
        for requirement in pending:
            name = _canonical(requirement.name)
            if name in KERNEL_PROVIDES or name == _canonical(PACKAGE):
                continue
            wanted[name] = wanted.get(name, SpecifierSet()) & requirement.specifier
            extras.setdefault(name, set()).update(requirement.extras)
        missing = [n for n in wanted if n not in chosen or not wanted[n].contains(_wheel_metadata(chosen[n]).version, prereleases=True)]
        pending = []
        if not missing:
            break
        found = {n: _best_cached(cache, n, wanted[n], Version) for n in missing}
        absent = [n for n, wheel in found.items() if wheel is None]
        if absent:
            if offline:
                raise LivekitDemoError(f"wheels missing from the cache {cache}: {', '.join(absent)}; build once without --offline")
            _pip_download([f"{n}{wanted[n]}" for n in absent], cache, environment, log=log)
            found.update({n: _best_cached(cache, n, wanted[n], Version) for n in absent})
        for name, wheel in found.items():
            if wheel is None:
                raise LivekitDemoError(f"no pure-Python wheel of {name}{wanted[name]} for the browser: it cannot be bundled")
            chosen[name] = wheel
            meta = _wheel_metadata(wheel)
            pending += _requirements(meta, environment, extras=extras.get(name, ()))
    return chosen


def _best_cached(cache: Path, name: str, specifier: Any, version_type: Any) -> Path | None:
    best: tuple[Any, Path] | None = None
    for wheel in cache.glob("*.whl"):
        if not _PURE.search(wheel.name):
            continue
        dist, version = wheel.name.split("-")[:2]
        if _canonical(dist) != name or not specifier.contains(version):
            continue
        if best is None or version_type(version) > best[0]:
            best = (version_type(version), wheel)
    return best[1] if best else None


def _pip_download(specs: list[str], cache: Path, environment: dict[str, str], *, log: Any) -> None:
    log(f"fetching wheels: pip download {' '.join(specs)}")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "--python-version", environment["python_version"], "--platform", "any", "--implementation", "py", "--abi", "none",
               "--dest", str(cache), *specs]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise LivekitDemoError(f"pip download failed: {(done.stderr or done.stdout).strip()[-800:]}")


def _lock_file(info: dict[str, Any], bundled: dict[str, Path], environment: dict[str, str]) -> dict[str, Any]:
    """A Pyodide lock listing exactly the bundled wheels (file names relative: they sit beside it)."""
    packages = {}
    for key, wheel in sorted(bundled.items()):
        meta = _wheel_metadata(wheel)
        depends = sorted({_canonical(r.name) for r in _requirements(meta, environment)} & set(bundled))
        packages[key] = {
            "name": meta.name,
            "version": meta.version,
            "file_name": wheel.name,
            "install_dir": "site",
            "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
            "package_type": "package",
            "imports": meta.top_level,
            "depends": depends,
            "unvendored_tests": False,
        }
    return {"info": info, "packages": packages}


# -- the check ---------------------------------------------------------------------------------

_ABSOLUTE = re.compile(r"^(https?:)?//", re.IGNORECASE)


def check_site(site: Path) -> list[str]:
    """What in the built site at `site` would be fetched from outside it (empty: nothing).

    Looks where a JupyterLite site says what to load: every ``jupyter-lite.json``, the kernel's
    settings (runtime URL, lock file, PyPI fallback), the Pyodide lock file and the piplite indexes.
    """
    site = site.resolve()
    problems: list[str] = []
    configs = sorted(site.rglob("jupyter-lite.json"))
    if not configs:
        return [f"{site} holds no jupyter-lite.json: not a built site"]
    for config in configs:
        for where, value in _strings(json.loads(config.read_text())):
            if _ABSOLUTE.match(value):
                problems.append(f"{config.relative_to(site)}: {where} = {value}")
    settings = _kernel_settings(site / "jupyter-lite.json")
    if not settings.get("disablePyPIFallback"):
        problems.append("jupyter-lite.json: the kernel may fall back to PyPI (disablePyPIFallback is not true)")
    runtime = settings.get("pyodideUrl", "")
    if not runtime or _ABSOLUTE.match(runtime) or not (site / runtime).is_file():
        problems.append(f"jupyter-lite.json: pyodideUrl {runtime!r} is not a file of the site (the kernel would use a CDN)")
        return problems
    lock = (site / runtime).parent / "pyodide-lock.json"
    options = settings.get("loadPyodideOptions", {})
    problems += [
        f"jupyter-lite.json: loadPyodideOptions.{key} = {options[key]!r}: the lock beside the runtime must be the one"
        for key in ("lockFileURL", "packageBaseUrl", "indexURL")
        if key in options
    ]
    if not lock.is_file():
        problems.append(f"{lock.relative_to(site)} is missing: Pyodide would look for packages on its CDN")
    else:
        listed = json.loads(lock.read_text()).get("packages", {})
        for key, entry in listed.items():
            file_name = str(entry.get("file_name", ""))
            if _ABSOLUTE.match(file_name) or "/" in file_name or not (lock.parent / file_name).is_file():
                problems.append(f"{lock.relative_to(site)}: {key} -> {file_name!r} is not a file beside the lock")
        problems += [f"jupyter-lite.json: preloaded package {n!r} is not in the lock file" for n in options.get("packages", []) if _canonical(n) not in listed]
    for index in sorted(site.rglob("all.json")):
        for where, value in _strings(json.loads(index.read_text())):
            if where.endswith(".url") and (_ABSOLUTE.match(value) or not (index.parent / value).is_file()):
                problems.append(f"{index.relative_to(site)}: {where} = {value} is not a file of the site")
    return problems


def _kernel_settings(config: Path) -> dict[str, Any]:
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return {}
    return dict(data.get("jupyter-config-data", {}).get("litePluginSettings", {}).get(KERNEL_SETTINGS, {}))


def _strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _strings(item, f"{where}[{i}]")
