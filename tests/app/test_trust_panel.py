"""The trust panel and the cohort trust table in the dashboard (AppTest on a page calling them)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

import fusioncore as fc
from fusioncore.demo import demo_checkpoint
from fusioncore.explain.trust_assess import assess_sample, demo_planted_truth
from fusioncore.explain.trust_scores import Explanation
from fusioncore.inspect.session import ensure_aligned
from fusioncore.inspect.sources import demo_cohort

PAGE = str(Path(__file__).with_name("trust_page.py"))


def test_panel_computes_on_demand_then_shows_the_cached_verdict():
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception
    assert not at.metric  # nothing computed before the button
    at.button(key="trust_go_gates_mrna").click().run()
    assert not at.exception
    model = fc.load(demo_checkpoint("mmdynamics_omics"))
    data = ensure_aligned(model, demo_cohort()[0])
    expected = assess_sample(model, data, 0, truth=demo_planted_truth(data)).record(Explanation("gates", "mrna"))
    text = "\n".join(m.value for m in at.markdown)
    assert f"— feature gates (mrna)" in text and f"**{expected.verdict}**" in text
    labels = [m.label for m in at.metric]
    assert labels[:3] == ["Randomisation |ρ|", "Deletion gap", "Planted truth AUROC"]
    assert at.metric[1].value == f"{expected.deletion_gap.mean:+.3f}"
    for check in expected.checks:
        assert check.line in text
    # the same (model, sample, pattern) is cached: IG of methylation came from the same checks
    assert any(m.startswith("Trust:") and "Integrated Gradients (methylation)" in m for m in (x.value for x in at.markdown))
    at.run()
    assert len([m for m in at.metric if m.label == "Deletion gap"]) == 2  # still shown, no new button press


def test_switching_a_modality_off_is_a_new_pattern():
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["pattern"] = (False, True, True)
    at.run()
    at.button(key="trust_go_gates_mrna").click().run()
    assert not at.exception
    assert any("no feature gates (mrna) for this sample" in c.value for c in at.caption)


def test_cohort_trust_table():
    at = AppTest.from_file(PAGE, default_timeout=180).run()
    at.number_input(key="trust_n").set_value(6).run()
    at.toggle(key="trust_on").set_value(True).run()
    assert not at.exception
    table = [d for d in at.dataframe][0].value
    assert set(table["explanation"]) == {"gates", "ig"} and len(table) == 6
    assert set(table["verdict"]) <= {"trustworthy", "doubtful", "untrustworthy"}
    assert any("6 samples" in c.value for c in at.caption)
