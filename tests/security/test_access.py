"""Allowed roots: which server paths a dashboard may open, decided before anything is opened."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fusioncore.access import (AccessError, AccessPolicy, access_policy, allowed_roots, confine, is_loopback,
                               resolve_allowed, server_paths_enabled)


@pytest.fixture
def tree(tmp_path):
    """root/ (allowed) with data and a link to outside/ (not allowed), which holds a secret."""
    (tmp_path / "root" / "data").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text("password")
    os.symlink(tmp_path / "outside", tmp_path / "root" / "link")
    return tmp_path


def env(*roots: Path, **more: str) -> dict[str, str]:
    return {"FUSIONCORE_ALLOWED_ROOTS": os.pathsep.join(map(str, roots)), "HOME": "/nonexistent", **more}


def test_paths_inside_the_roots_resolve(tree):
    got = resolve_allowed(tree / "root" / "data", "dataset", environ=env(tree / "root"))
    assert got == (tree / "root" / "data").resolve()
    dotted = resolve_allowed(f"{tree}/root/data/../data", "dataset", environ=env(tree / "root"))
    assert dotted == got


@pytest.mark.parametrize("target", ["outside", "outside/secret.txt", "root/link", "root/link/secret.txt",
                                    "root/../outside", "outside/does-not-exist"])
def test_paths_outside_the_roots_are_refused_directly_and_through_links(tree, target):
    typed = str(tree / target)
    with pytest.raises(AccessError) as err:
        resolve_allowed(typed, "checkpoint", environ=env(tree / "root"))
    text = str(err.value)
    assert f"Checkpoint folder {typed!r} is outside the folders this dashboard may read" in text
    # the same answer whether it exists or not, and the link's target is never named
    assert "secret" not in text.replace(typed, "") and str(tree / "outside") not in text.replace(typed, "")


def test_a_root_that_is_itself_a_link_counts_by_its_target(tree):
    os.symlink(tree / "root" / "data", tree / "data-link")
    assert resolve_allowed(tree / "root" / "data", environ=env(tree / "data-link")) == (tree / "root" / "data").resolve()


def test_modes_follow_roots_and_bind_address(tree):
    none = {"HOME": "/nonexistent"}
    assert access_policy("127.0.0.1", none).mode == "local"
    assert access_policy("localhost", none).mode == "local" and access_policy("::1", none).mode == "local"
    for address in ("0.0.0.0", "192.168.1.7", "", None, "::"):
        policy = access_policy(address, none)
        assert policy.mode == "shared" and not policy.server_paths_enabled
        with pytest.raises(AccessError, match="shared and reads no server paths; upload the files instead"):
            policy.resolve(tree / "root", "dataset")
    assert access_policy("0.0.0.0", env(tree / "root")).mode == "restricted"
    assert server_paths_enabled("0.0.0.0", env(tree / "root")) and not server_paths_enabled("0.0.0.0", none)
    assert access_policy("127.0.0.1", none).resolve(tree / "outside") == (tree / "outside").resolve()
    # on loopback behind a proxy, or with a login configured, several people use it: shared
    assert access_policy("127.0.0.1", {**none, "FUSIONCORE_SHARED": "1"}).mode == "shared"
    assert access_policy("127.0.0.1", none, multi_user=True).mode == "shared"


def test_roots_from_the_config_file(tree):
    config = tree / "fusioncore.toml"
    config.write_text(f'[server]\nallowed_roots = ["{tree / "root"}"]\n')
    roots, source = allowed_roots({"FUSIONCORE_CONFIG": str(config)})
    assert roots == ((tree / "root").resolve(),) and source == str(config)
    xdg = tree / "xdg"
    (xdg / "fusioncore").mkdir(parents=True)
    (xdg / "fusioncore" / "config.toml").write_text(config.read_text())
    assert access_policy("0.0.0.0", {"XDG_CONFIG_HOME": str(xdg)}).mode == "restricted"
    # the environment variable wins over the file
    assert allowed_roots({"FUSIONCORE_CONFIG": str(config), "FUSIONCORE_ALLOWED_ROOTS": str(tree)})[0] == (tree.resolve(),)


@pytest.mark.parametrize("text, message", [
    ("[server]\nallowed_roots = '/data'\n", "allowed_roots must be a list of strings"),
    ("[server\n", "cannot read the fusioncore config file"),
    ("[server]\nallowed_roots = ['data/relative']\n", "must be absolute folders"),
])
def test_bad_config_files_are_named(tmp_path, text, message):
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(AccessError, match=message) as err:
        access_policy("0.0.0.0", {"FUSIONCORE_CONFIG": str(config)})
    assert "c.toml" in str(err.value) or "relative" in str(err.value)


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("127.8.0.1") and is_loopback("[::1]") and is_loopback("LOCALHOST")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1") and not is_loopback("example.org")


def test_confine_keeps_named_files_inside_their_folder(tree):
    folder = (tree / "root").resolve()
    (folder / "data" / "t.csv").write_text("x")
    assert confine("data/t.csv", folder, "fusioncore.json: labels") == folder / "data" / "t.csv"
    for bad in ("../outside/secret.txt", str(tree / "outside" / "secret.txt"), "link/secret.txt"):
        with pytest.raises(AccessError, match="fusioncore.json: labels: .* points outside the dataset folder"):
            confine(bad, folder, "fusioncore.json: labels")


def test_policy_descriptions_say_what_is_allowed(tree):
    assert str((tree / "root").resolve()) in AccessPolicy(((tree / "root").resolve(),), "restricted").describe()
    assert "upload files instead" in AccessPolicy((), "shared").describe()
