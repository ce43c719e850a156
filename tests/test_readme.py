"""The README and docs/*.md are executable: every shell command block a user would run, runs.

Each fenced block labelled ``bash``/``sh``/``shell``/``console`` -- or unlabelled but starting
with a command (``fusioncore``, ``python``, ``streamlit``, ...) -- of README.md and docs/*.md is
run, in a workspace that reproduces the documented layouts on small generated data:

* the working folder stands for the repository root (``fusioncore/assets/``, ``app/``, ``scripts/``
  and ``benchmarks/`` link to the real ones), ``my_cohort/`` is the README's worked example
  (labels, an omics table, an image table, ``tiles/``), and ``../shared/data/`` holds a
  generated MOGONET folder at ``rosmap/`` and a generated H&E region at the documented name;
* commands run as written except for the cuts below (epochs, seeds, sample counts), which
  keep the whole test within a couple of minutes on a 2-core machine;
* ``fusioncore ...`` / ``python -m fusioncore ...`` run in-process (the same ``main`` as the
  console script, without a Python start-up per command), ``streamlit run`` and ``fusioncore
  dashboard`` are started and must answer on ``/_stcore/health``, anything else runs in ``bash``.

Each command must exit 0 and write the outputs the docs name (``--out``, a checkpoint's files,
``heat.npy`` beside a heatmap, ``trust.json``). A block that cannot run here -- multi-process or
GPU runs, hour-long measurements, installs, the test suite itself -- carries a visible marker
in the markdown on the line before it: ``<!-- not-run: reason -->``; it is reported as skipped
with its reason. A block without a marker must run.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "app"))
from browser_helpers import free_port, stop_server, wait_healthy  # noqa: E402
from doc_layouts import official_state_dict, write_mogonet, write_my_cohort, write_region # noqa: E402

DOC_FILES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
COMMAND = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=\S*\s+)*(fusioncore|python|streamlit|torchrun|pytest|pip|export|for)(\s|$)")
MARKER = re.compile(r"^<!--\s*not-run:\s*(.*?)\s*-->$")
LINKED = ("fusioncore/assets", "app", "scripts", "benchmarks")
#: Options set on commands to keep them short: sub-command -> {option: value} (added when absent).
CUTS = {
    "train": {"--epochs": "1"},
    "benchmark": {"--seeds": "1", "--epochs": "1"},
    "fidelity": {"--max-samples": "4"},
    "trust": {"--max-samples": "2", "--stages": "2", "--randomisation-samples": "2", "--steps": "2",
              "--random-orderings": "1"},
}


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, from 1
    text: str
    reason: str | None  # the not-run marker's reason

    @property
    def name(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def extract_blocks(doc: Path) -> list[Block]:
    """The shell command blocks of ``doc`` with their not-run markers."""
    lines = doc.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        fence = re.match(r"^\s*```(\S*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```"))
        body = [ln.strip() for ln in lines[i + 1 : end]]
        first = next((ln for ln in body if ln and not ln.startswith("#")), "")
        if fence.group(1) in SHELL_LANGS or (not fence.group(1) and COMMAND.match(first)):
            before = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            marker = MARKER.match(before)
            blocks.append(Block(doc, i + 1, "\n".join(body), marker.group(1) if marker else None))
        i = end + 1
    return blocks


BLOCKS = [b for doc in DOC_FILES for b in extract_blocks(doc)]


def commands(text: str) -> list[list[str]]:
    """The block's commands as argument lists (continuations joined, comments dropped)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [argv for line in joined.splitlines() if (argv := shlex.split(line, comments=True))]


def split_env(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    env = {}
    while argv and re.match(r"^[A-Z_][A-Z0-9_]*=", argv[0]):
        key, value = argv[0].split("=", 1)
        env[key], argv = value, argv[1:]
    return env, argv


def cut(argv: list[str]) -> list[str]:
    """``fusioncore`` arguments with :data:`CUTS` applied to their sub-command."""
    sub = argv[1] if argv[:1] == ["explain"] and len(argv) > 1 else (argv[0] if argv else "")
    out = list(argv)
    for option, value in CUTS.get(sub, {}).items():
        if option in out:
            out[out.index(option) + 1] = value
        else:
            out += [option, value]
    return out


def expected_outputs(argv: list[str]) -> list[str]:
    """What the docs say a command writes, from its ``--out``."""
    if "--out" not in argv:
        return []
    out = argv[argv.index("--out") + 1]
    sub = argv[1] if argv[0] == "explain" else argv[0]
    if sub in ("train", "import"):
        return [f"{out}/config.json", f"{out}/model.safetensors"] + ([f"{out}/metrics.json"] if sub == "train" else [])
    if sub == "heatmap":
        return [out, str(Path(out).with_suffix(".npy"))]  # "writes heat.png ... and heat.npy"
    if sub == "trust":
        return [f"{out}/trust.json"]
    return [out]


@pytest.fixture(scope="session")
def workspace(tmp_path_factory) -> Path:
    """The documented layouts on generated data, with one small image checkpoint at runs/mmdyn."""
    root = tmp_path_factory.mktemp("docs")
    repo = root / "repo"
    repo.mkdir()
    for name in LINKED:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).symlink_to(REPO / name)
    write_my_cohort(repo / "my_cohort", n=24)
    write_region(repo / "big_region.png")
    write_region(repo / "slide_region.png")
    shared = root / "shared" / "data"
    write_mogonet(shared / "rosmap", n_tr=30, n_te=12, dims=(6, 5, 4))
    write_region(shared / "he_tiles" / "cmu1_small_region_crop_x1024_y768_512.png")
    torch.save(official_state_dict((6, 5, 4), hidden=7, k=2), repo / "checkpoint.pt")
    code, _, err = run_fusioncore(repo, {}, ["train", "--method", "mmdynamics", "--data", "table:my_cohort",
                                             "--out", "runs/mmdyn", "--epochs", "1", "--quiet"])
    assert code == 0, err
    return repo


def run_fusioncore(cwd: Path, env: dict[str, str], argv: list[str]) -> tuple[int, str, str]:
    """``fusioncore ARGV`` in-process, in ``cwd`` with ``env`` added: (exit code, stdout, stderr)."""
    from fusioncore.cli import main

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        os.environ.update(env)
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return code, out.getvalue(), err.getvalue()


def serve_and_check(cwd: Path, env: dict[str, str], argv: list[str], timeout: float = 120.0) -> None:
    """Start ``streamlit run ...`` or ``fusioncore dashboard ...`` and wait until its health endpoint answers ``ok``."""
    port = str(free_port())
    flag = "--server.port" if argv[0] == "streamlit" else "--port"
    argv = [a for a in argv]
    if flag in argv:
        argv[argv.index(flag) + 1] = port
    else:
        argv += [flag, port]
    if argv[0] == "streamlit":  # fusioncore dashboard sets these itself
        argv += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    full_env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", *argv], cwd=cwd, env=full_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        if not wait_healthy(f"http://127.0.0.1:{port}", proc, timeout):
            if proc.poll() is not None:
                raise AssertionError(f"streamlit exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
            raise AssertionError(f"streamlit did not answer on port {port} within {timeout:.0f} s")
    finally:
        stop_server(proc)


def run_command(cwd: Path, argv: list[str]) -> None:
    """Run one documented command (module doc) and check its exit status and outputs."""
    env, argv = split_env(argv)
    if argv[:2] == ["fusioncore", "dashboard"] and "--help" not in argv and "-h" not in argv:
        serve_and_check(cwd, env, argv)  # a server: started like streamlit run, not in-process
    elif argv[:1] == ["fusioncore"] or argv[:3] == ["python", "-m", "fusioncore"]:
        args = cut(argv[1:] if argv[0] == "fusioncore" else argv[3:])
        code, _, err = run_fusioncore(cwd, env, args)
        assert code == 0, f"fusioncore {shlex.join(args)} exited {code}:\n{err[-3000:]}"
        missing = [p for p in expected_outputs(args) if not (cwd / p).exists()]
        assert not missing, f"fusioncore {shlex.join(args)} did not write {missing}"
    elif argv[:2] == ["streamlit", "run"]:
        serve_and_check(cwd, env, argv)
    else:
        proc = subprocess.run(["bash", "-e", "-c", shlex.join(argv)], cwd=cwd, env={**os.environ, **env},
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"


def test_blocks_were_found_and_every_marker_says_why():
    assert len(BLOCKS) >= 20 and any(b.reason is None for b in BLOCKS)
    for doc in DOC_FILES:
        text = doc.read_text().splitlines()
        for i, line in enumerate(text):
            if line.strip().startswith("<!-- not-run"):
                assert MARKER.match(line.strip()) and MARKER.match(line.strip()).group(1), f"{doc}:{i + 1}: no reason"
                following = next((ln for ln in text[i + 1 :] if ln.strip()), "")
                assert following.strip().startswith("```"), f"{doc}:{i + 1}: a not-run marker must precede a block"


@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_documented_block_runs(block: Block, workspace: Path):
    if block.reason is not None:
        pytest.skip(f"not-run: {block.reason}")
    for argv in commands(block.text):
        t0 = time.perf_counter()
        run_command(workspace, argv)
        print(f"{time.perf_counter() - t0:6.1f} s  {shlex.join(argv)[:120]}")
