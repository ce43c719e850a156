"""``fusioncore explain slides``: a folder of slides under torchrun with 2 Gloo processes gives the
same CSV as 1 process; finished slides are skipped; a corrupt slide is an error row, not a crash."""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import sys

from slide_helpers import REPO, slide_factory, textures, tiny_checkpoint  # noqa: F401  (fixtures)

from fusioncore.reports.slide_cohort import CohortError, list_slides


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _slides(args: list[str], nproc: int) -> subprocess.CompletedProcess:
    launch = [sys.executable, "-m", "fusioncore"] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1",
        "--master-port", str(_free_port()), "-m", "fusioncore"]
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", FUSIONCORE_DIST_BACKEND="gloo")
    return subprocess.run([*launch, "explain", "slides", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


def test_two_gloo_processes_give_the_same_csv_as_one(slide_factory, tiny_checkpoint, tmp_path):  # noqa: F811
    folder = tmp_path / "cohort"
    folder.mkdir()
    for i, size in enumerate([(768, 512), (512, 512), (640, 384)]):
        (folder / f"slide{i}.tif").symlink_to(slide_factory(f"cohort{i}.tif", size, levels=2, seed=i, n_islands=2))
    (folder / "broken.svs").write_bytes(b"\x00" * 4096)
    common = ["--checkpoint", str(tiny_checkpoint), "--slides", str(folder), "--precision", "fp32", "--quiet"]
    one = _slides([*common, "--out", str(tmp_path / "one")], 1)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _slides([*common, "--out", str(tmp_path / "two")], 2)
    assert two.returncode == 0, two.stderr[-3000:]
    csv_one = (tmp_path / "one" / "slides.csv").read_text().replace(str(tmp_path / "one"), "")
    csv_two = (tmp_path / "two" / "slides.csv").read_text().replace(str(tmp_path / "two"), "")
    assert csv_one == csv_two
    rows = list(csv.DictReader(open(tmp_path / "one" / "slides.csv", newline="")))
    assert [r["slide_id"] for r in rows] == ["broken", "slide0", "slide1", "slide2"]
    assert rows[0]["status"] == "error" and "broken.svs" in rows[0]["error"]
    assert all(r["status"] == "done" and r["predicted"] in ("a", "b") and float(r["p_a"]) + float(r["p_b"]) > 0.999
               for r in rows[1:])
    # both ranks ran slides (round robin: rank 1 took slide0 and slide2 of the sorted four)
    assert (tmp_path / "two" / "slide0" / "summary.json").is_file() and (tmp_path / "two" / "slide2" / "summary.json").is_file()
    again = _slides([*common, "--out", str(tmp_path / "one")], 1)
    assert again.returncode == 0 and again.stdout.count("skipped (already complete)") == 3
    assert (tmp_path / "one" / "slides.csv").read_text().replace(str(tmp_path / "one"), "") == csv_one


def test_slide_lists_from_a_csv(tmp_path):
    (tmp_path / "a.svs").write_bytes(b"x")
    listing = tmp_path / "list.csv"
    listing.write_text("slide,slide_id\na.svs,first\n")
    assert list_slides(listing) == [("first", tmp_path / "a.svs")]
    listing.write_text("path\na.svs\n")
    try:
        list_slides(listing)
    except CohortError as err:
        assert "list.csv" in str(err) and "'slide' column" in str(err)
    else:
        raise AssertionError("a CSV without a slide column was accepted")
    listing.write_text("slide,slide_id\na.svs,x\na.svs,x\n")
    try:
        list_slides(listing)
    except CohortError as err:
        assert "used twice" in str(err)
    else:
        raise AssertionError("a duplicated slide id was accepted")
