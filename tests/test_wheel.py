"""A wheel built from this checkout works without it: the library, the demo and the dashboard.

Why: the demo assets and the app are package data found through ``importlib.resources``
(``fusioncore/demo.py``, ``fusioncore/inspect/launch.py``); only an installed copy shows that
nothing still reaches into the repository. The ``wheel`` test builds the wheel offline
(``pip wheel --no-deps --no-build-isolation --no-index``) from a copy of what the build needs,
installs it into a fresh virtual environment (``--system-site-packages``, so torch is not
installed again) and, from a folder outside the checkout with ``PYTHONPATH`` and
``FUSIONCORE_ASSETS`` unset, checks that ``fusioncore`` is the installed copy (not this checkout
nor the editable install of another one), loads a bundled checkpoint from the installed files and
predicts with it exactly as the checkout's checkpoint does, runs ``fusioncore dashboard --help``
and serves the installed dashboard until ``/_stcore/health`` answers. About 40 s; marked
``wheel`` (``-m "not wheel"`` deselects it; CI runs it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import site
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "app"))
from browser_helpers import free_port, wait_healthy  # noqa: E402

from fusioncore.access import tomllib  # noqa: E402

#: What the build reads: pyproject's packages, package-dir and package data, and the readme.
BUILD_INPUTS = ("pyproject.toml", "README.md", "fusioncore", "app")
#: Build leftovers and caches never copied (a stale ``build/`` would put removed modules in the wheel).
NOT_COPIED = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "dist", "*.egg-info", ".pytest_cache")

PROBE = """
import json
import torch
import fusioncore, fusioncore_app
from fusioncore.checkpoint import checkpoint_hash
from fusioncore.demo import demo_checkpoint
from fusioncore.inspect.launch import app_dir
path = demo_checkpoint("mmdynamics_omics")
model = fusioncore.load(path)
print(json.dumps({"fusioncore": fusioncore.__file__, "app_package": fusioncore_app.__file__, "app": str(app_dir()),
                  "checkpoint": str(path), "sha256": checkpoint_hash(path), "logits": LOGITS(model).tolist()}))
"""
LOGITS = """
def LOGITS(model):
    # a seeded batch of the model's own shapes, every modality present: the same numbers in any process
    g = torch.Generator().manual_seed(0)
    inputs = {m.name: torch.rand((16, *m.shape), generator=g) for m in model.schema.modalities}
    with torch.no_grad():
        return model(fusioncore.Batch(inputs, torch.ones(16, len(inputs), dtype=torch.bool))).logits
"""


def _installed_packages() -> set[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"fusioncore_app": "app"}
    return set(config["packages"])


def test_the_package_list_names_every_package_of_the_tree():
    """package-dir needs an explicit list (pyproject.toml): a new sub-package left out of it would be
    missing from the wheel, so the list is checked against the tree here, in the fast run."""
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "fusioncore").rglob("__init__.py")}
    assert _installed_packages() == on_disk | {"fusioncore_app"}


def _run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, argv))} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> tuple[Path, dict[str, str], Path]:
    """(the venv's bin folder, an environment without the checkout on it, a folder outside the checkout)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"ignore": NOT_COPIED} if (REPO / name).is_dir() else {}))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FUSIONCORE_ASSETS", "PIP_REQUIRE_VIRTUALENV")}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", OMP_NUM_THREADS="1")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
          str(root / "dist"), str(source)], root, env)
    (wheel,) = (root / "dist").glob("fusioncore-*.whl")
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(root / "venv")], root, env)
    bin_dir = root / "venv" / "bin"
    if sys.prefix != sys.base_prefix:  # run from a venv: --system-site-packages would reach the base interpreter's only
        site_dir = _run([str(bin_dir / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                        root, env).stdout.strip()
        Path(site_dir, "_outer_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    # --force-reinstall: the system site-packages already hold a fusioncore of the same version (editable)
    _run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "--no-deps", "--no-index",
          "--force-reinstall", str(wheel)], root, env)
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    return bin_dir, env, elsewhere


@pytest.mark.wheel
def test_the_installed_wheel_loads_a_bundled_checkpoint_from_its_own_files(venv):
    bin_dir, env, elsewhere = venv
    site = bin_dir.parent.resolve()
    got = json.loads(_run([str(bin_dir / "python"), "-c", LOGITS + PROBE], elsewhere, env).stdout.strip().splitlines()[-1])
    for key in ("fusioncore", "app_package", "app", "checkpoint"):
        assert Path(got[key]).resolve().is_relative_to(site), f"{key} is {got[key]}, not the installed copy in {site}"
    assert Path(got["app"]).name == "fusioncore_app" and (Path(got["app"]) / "main.py").is_file()

    import torch

    import fusioncore
    from fusioncore.checkpoint import checkpoint_hash
    from fusioncore.demo import demo_checkpoint

    ours = demo_checkpoint("mmdynamics_omics")
    assert got["sha256"] == checkpoint_hash(ours)  # the wheel ships the checkout's checkpoint, byte for byte
    scope = {"torch": torch, "fusioncore": fusioncore}
    exec(LOGITS, scope)  # noqa: S102  (the probe's own function, run here on the checkout's copy)
    logits = scope["LOGITS"](fusioncore.load(ours))
    assert torch.equal(torch.tensor(got["logits"]), logits)


@pytest.mark.wheel
def test_the_installed_command_serves_the_installed_dashboard(venv):
    bin_dir, env, elsewhere = venv
    help_text = _run([str(bin_dir / "fusioncore"), "dashboard", "--help"], elsewhere, env).stdout
    assert "--port" in help_text and "--address" in help_text
    port = free_port()
    server = subprocess.Popen([str(bin_dir / "fusioncore"), "dashboard", "--port", str(port)], cwd=elsewhere,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        healthy = wait_healthy(f"http://127.0.0.1:{port}", server, 90)
        if not healthy:
            server.kill()
        assert healthy, f"the installed dashboard did not answer: {server.communicate(timeout=10)[0][-3000:]}"
        served = _served_scripts(server.pid)
        server.send_signal(signal.SIGTERM)  # passed on to the Streamlit server (fusioncore/inspect/launch.py)
        out, _ = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, out[-3000:]
    if served is not None:  # Linux: the server's command line names the installed app
        app = bin_dir.parent.resolve()
        assert any(Path(s).resolve().is_relative_to(app) and Path(s).parent.name == "fusioncore_app" for s in served), served


def _served_scripts(pid: int) -> list[str] | None:
    """The ``main.py`` paths on the command lines of ``pid``'s children (None without ``/proc``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if not children.is_file():
        return None
    found = []
    for child in children.read_text().split():
        argv = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
        found += [a for a in argv if a.endswith("main.py")]
    return found
