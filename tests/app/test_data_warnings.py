"""The dashboard shows the data warnings the CLI prints (issue 14, item 3): ``st.warning`` in the
sidebar where the data is loaded (the list comes from ``fusioncore.data.checks.data_warnings``)."""

from __future__ import annotations

import shutil

from app_helpers import app, mca_case, tiny_assets, tiny_assets_root  # noqa: F401  (fixtures)


def test_sidebar_shows_the_data_warnings(app, mca_case, tmp_path):  # noqa: F811
    ckpt, data_folder, _ = mca_case
    folder = tmp_path / "data"
    shutil.copytree(data_folder, folder)
    lines = (folder / "labels.csv").read_text().splitlines()
    lines[3] = lines[3].split(",")[0] + ","
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    at = app().run()
    at.radio(key="model_source").set_value("Checkpoint folder").run()
    at.text_input(key="model_path").input(str(ckpt)).run()
    at.radio(key="data_source").set_value("Dataset folder").run()
    at.text_input(key="data_path").input(str(folder)).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    shown = "\n".join(w.value for w in at.sidebar.warning)
    assert "labels.csv: 1 of 32 sample(s) have no label and were dropped (row(s) 4)" in shown
