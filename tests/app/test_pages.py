"""Every page of the dashboard driven with AppTest: defaults, toggles, navigation between views."""

from __future__ import annotations


import numpy as np

import fusioncore as fc
from app_helpers import app, charts, mca_case, open_tab, tiny_assets, tiny_assets_root, use_omics  # noqa: F401  (fixtures)
from fusioncore.demo import demo_checkpoint
from fusioncore.inspect import explain_sample, run_cohort, tcp_summary
from fusioncore.inspect.sources import demo_cohort

PAGES = {"views/sample.py": "Sample view", "views/attention.py": "Attention view",
         "views/tcp.py": "TCP error view", "views/cohort.py": "Cohort view"}


def test_default_state_renders_every_page(app):
    at = app().run()
    assert not at.exception
    assert "Research use only" in at.caption[0].value and "not for diagnosis" in at.caption[0].value
    sidebar = "\n".join(m.value for m in at.sidebar.markdown)
    for label in ("method", "modalities", "classes", "parameters", "device"):
        assert f"**{label}**" in sidebar
    assert "histology (image)" in sidebar and "cpu" in sidebar
    assert at.title[0].value == "Sample view" and at.metric[0].label == "Prediction"
    figs = charts(at)
    assert len(figs) == 2 and any("heatmap overlay" in f for f in figs)  # informativeness, heatmap (the open tabs)
    assert any("Class probabilities" in f for f in charts(open_tab(at, "Class probabilities", "overview_tab")))
    assert "trust_go_image_map_histology" in [b.key for b in at.button]  # the trust panel beside the map
    assert any("Feature informativeness" in f for f in charts(open_tab(at, "Feature gates")))
    assert "trust_go_gates_mrna" in [b.key for b in at.button]
    for page, title in PAGES.items():
        at.switch_page(page).run()
        assert not at.exception, page
        assert at.title[0].value == title


def test_toggle_changes_prediction_and_explanations_as_the_library_says(app):
    at = use_omics(app().run())
    model = fc.load(demo_checkpoint("mmdynamics_omics"))
    data = demo_cohort()[0]
    full = explain_sample(model, data, 0)
    assert at.metric[1].value == f"{full.probabilities[full.predicted]:.3f}"
    at.toggle(key="toggle_mrna").set_value(False).run()
    assert not at.exception
    off = explain_sample(model, data, 0, {"mrna": False})
    assert at.metric[0].value == off.predicted_class
    assert at.metric[1].value == f"{off.probabilities[off.predicted]:.3f}"
    assert f"{off.change[off.predicted]:+.3f}" in at.metric[0].delta
    assert "Without mrna" in at.info[0].value
    for c, d in zip(off.classes, off.change):
        assert f"{c} {d:+.3f}" in at.info[0].value
    rows = at.table[0].value
    assert rows.loc["mrna", "status"] == "switched off"
    assert rows.loc["mrna", "confidence"] == rows.loc["mrna", "true TCP"] == "—"
    assert rows.loc["methylation", "status"] == "used"
    assert rows.loc["methylation", "confidence"] == f"{off.confidence['methylation']:.3f}"
    open_tab(at, "Feature gates")
    assert at.selectbox(key="gate_modality").options == ["methylation", "noisy"]
    # the modality that is off is drawn as "absent", not as a zero bar
    assert any('"absent"' in f for f in charts(at))
    at.toggle(key="toggle_mrna").set_value(True).run()
    assert at.metric[1].value == f"{full.probabilities[full.predicted]:.3f}" and not at.info


def test_feature_search_and_heatmap_controls(app):
    at = open_tab(app().run(), "Feature gates")
    at.text_input(key="gate_search").input("no-such-feature").run()
    assert not at.exception and any("no feature matches" in f for f in charts(at))
    open_tab(at, "Image map: histology")
    heat = lambda: next(f for f in charts(at) if "heatmap overlay" in f)  # noqa: E731
    before = heat()
    at.slider(key="clip_histology").set_value((10.0, 90.0)).run()
    assert not at.exception and heat() != before  # the colour range follows the percentiles
    at.selectbox(key="cmap_histology").set_value("Inferno").run()
    assert not at.exception and "#000004" in heat()  # plotly's Inferno starts at #000004


def test_tcp_page_statistics_match_the_library(app):
    at = use_omics(app().run())
    at.switch_page("views/tcp.py").run()
    assert not at.exception
    model = fc.load(demo_checkpoint("mmdynamics_omics"))
    stats, fractions = tcp_summary(run_cohort(model, demo_cohort()[0]))
    shown = at.dataframe[0].value
    assert list(shown["modality"]) == list(stats["modality"])
    np.testing.assert_allclose(shown["RMSE"].to_numpy(), stats["rmse"].to_numpy())
    table = at.dataframe[1].value
    assert len(table) == 10 and list(table.columns) == list(stats["modality"])
    assert len(charts(at)) == 2


def test_cohort_row_opens_in_sample_view(app):
    at = use_omics(app().run())
    at.switch_page("views/cohort.py").run()
    assert not at.exception
    table = at.dataframe(key="cohort_table").value
    ids = list(table["sample_id"])
    assert len(ids) == len(demo_cohort()[0]) and {"true", "predicted", "mrna:tcp_error"} <= set(table.columns)
    at.checkbox(key="cohort_wrong").check().run()
    wrong = at.dataframe(key="cohort_table").value
    assert (~wrong["correct"]).all()
    at.checkbox(key="cohort_wrong").uncheck().run()
    at.selectbox(key="cohort_open").set_value(ids[3]).run()
    at.button(key="cohort_open_btn").click().run()
    assert at.title[0].value == "Sample view" and at.selectbox(key="sample").value == ids[3]


def test_robustness_subset_opens_its_samples(app):
    at = use_omics(app().run())
    at.switch_page("views/cohort.py").run()
    at.toggle(key="robust_on").set_value(True).run()
    assert not at.exception
    assert any("mrna+methylation+noisy" in f for f in charts(at))
    at.selectbox(key="robust_subset").set_value("methylation").run()
    samples = at.dataframe[-1].value
    at.button(key="robust_open_btn").click().run()
    assert at.title[0].value == "Sample view"
    assert {t.key: t.value for t in at.toggle if t.key.startswith("toggle_")} == {
        "toggle_mrna": False, "toggle_methylation": True, "toggle_noisy": False}
    assert at.metric[1].value == f"{samples['p_predicted'].iloc[0]:.3f}"


def test_attention_page_masks_switched_off_modalities(app, mca_case):
    ckpt, folder, data = mca_case
    at = app().run()
    at.radio(key="model_source").set_value("Checkpoint folder").run()
    at.text_input(key="model_path").input(str(ckpt)).run()
    at.radio(key="data_source").set_value("Dataset folder").run()
    at.text_input(key="data_path").input(str(folder)).run()
    assert not at.exception and not at.error
    at.switch_page("views/attention.py").run()
    assert not at.exception and at.title[0].value == "Attention view"
    figs = charts(at)
    assert len(figs) == 3 and "Attention mask" in figs[0]
    first = next(s for s, p in zip(data.sample_ids, data.present.all(axis=1)) if p)
    at.selectbox(key="att_sample").set_value(first).run()
    at.toggle(key="att_toggle_m1").set_value(False).run()
    assert not at.exception and "Switched off (masked, grey): m1" in at.caption[-1].value or any(
        "Switched off" in c.value for c in at.caption)
    figs = charts(at)
    assert '"absent"' in figs[1] and "m1 (absent)" in figs[2]
    at.selectbox(key="att_head").set_value(1).run()
    assert not at.exception and "head 1" in charts(at)[1]
