"""What a user sees after a sweep, in the real MLflow and Prefect UIs, as headless Chromium renders them.

One real `mlflow server` (SQLite store, proxied artifacts: `engineforge tracking start`'s), the session's
real `prefect server` with its UI, and one small sweep of the tiny model on the CPU (two variants, two
repeats each, a TTFT gate both pass) run against both: the session's `demo_sweep` (tests/sweep_helpers.py),
which the sweep flow test reads too (tests/sweep/test_sweep_flow.py). The pages are opened through the links the sweep printed, as a user
would; what is asserted is the text and the links as rendered (MLflow 3.17.2, Prefect 3.9.1), never the
API behind them. Skips, naming it, where chromium is not installed (`apt-get install -y chromium`; .ci/run
installs it). Screenshots are left in the test's temporary directory (`screenshots*`), named by page.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pytest
from headless_chromium import Page, chromium_or_skip
from mlflow.tracking import MlflowClient
from sweep_helpers import DEMO_SWEEP

from engineforge.tracking import mlflow_runs
from engineforge.tracking.mlflow_tags import CHAMPION_TAG, CHAMPION_VERSION_TAG, FLOW_RUN_TAG, FLOW_RUN_URL_TAG

pytestmark = pytest.mark.integration
CHROMIUM = chromium_or_skip()
RECIPE = DEMO_SWEEP
# GenAI mode's experiment sidebar and run tabs; the classic (machine learning) view has none of them.
GENAI_ONLY = ("Evaluations", "Judges", "Sessions", "Observability", "Training runs")


@dataclass
class Swept:
    summary: dict
    links: list[tuple[str, str]]
    client: MlflowClient

    def run(self, run_id: str):
        return self.client.get_run(run_id)

    def champion_run(self):
        (run_id,) = [v["run_id"] for v in self.summary["variants"] if v["variant"] == self.summary["champion"]]
        return self.run(run_id)

    def printed(self, label: str, run_id: str) -> str:
        (url,) = [url for name, url in self.links if name == label and run_id in url] or [None]
        return url


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    opened = Page(CHROMIUM, tmp_path_factory.mktemp("screenshots"))
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def swept(page, demo_sweep) -> Swept:
    return Swept(demo_sweep.summary, demo_sweep.links, demo_sweep.client)


def test_the_printed_mlflow_link_opens_the_classic_view_and_its_runs_tab_lists_the_sweep(page, swept):
    """MLflow 3.17.2 ignores the experiment kind tag: the printed link's `workflowType` query is what
    keeps a fresh browser out of GenAI mode, here and on the experiment's runs page reached from it."""
    parent = swept.run(swept.summary["mlflow"]["run_id"])
    assert [name for name, _ in swept.links[:2]] == ["Prefect flow run", "MLflow run"]  # the parent's, first
    page.open(swept.links[1][1])
    page.wait_for(parent.info.run_name, "Model metrics", "Champion: ", absent=GENAI_ONLY, shot="sweep-parent")
    page.click("Runs", href_part="workflowType=machine_learning")
    page.wait_for(parent.info.run_name, "Run Name", "4 matching runs", absent=GENAI_ONLY, shot="runs-table")


def test_the_sweep_parent_names_its_champion_children_and_version(page, swept):
    summary, champion = swept.summary, swept.summary["champion"]
    other = ({"mbs1", "mbs4"} - {champion}).pop()
    parent = swept.run(summary["mlflow"]["run_id"])
    number = parent.data.tags[CHAMPION_VERSION_TAG]
    page.open(swept.links[1][1])
    text = page.wait_for(f"Champion: {champion}, {RECIPE} version {number} @champion; objective",
                         f"{champion} (champion)", f"{other} · {RECIPE}", f"{champion} · {RECIPE} · champion",
                         f"{CHAMPION_TAG}\n: {champion}", shot="sweep-parent-champion")
    assert "Child runs" in text and swept.champion_run().data.tags[CHAMPION_TAG] == "true"
    assert not [href for _, href in page.links() if "github.com" in href]  # @champion is text, not a GitHub user


def test_the_run_page_shows_its_description_with_the_prefect_flow_run_as_a_link(page, swept):
    champion = swept.champion_run()
    url = swept.printed("MLflow run", champion.info.run_id)
    assert url and url.endswith("?workflowType=machine_learning")
    page.open(url)
    text = page.wait_for(champion.info.run_name, f"Champion of sweep run {swept.summary['mlflow']['run_id']}",
                         "validate\tran", "Validation: output_tokens_per_s",
                         "Prefect: flow run ", absent=GENAI_ONLY, shot="champion-run", scroll_to="Prefect: flow run ")
    # the figures and links first: MLflow shows a description's first lines until "Show more"
    assert text.index("Validation: output_tokens_per_s") < text.index("Prefect: flow run ") < text.index("validate\tran")
    flow_run_url = champion.data.tags[FLOW_RUN_URL_TAG]
    assert [text for text, href in page.links() if href == flow_run_url] == [
        f"flow run {flow_run_url.rsplit('/', 1)[1]}"]  # a link, not plain text
    # MLflow (KeyValueTag) cuts a chip's key as well as its value when both are over 15 characters, as every
    # engineforge.* key with an id or address is; the chip shows both whole when clicked.
    page.click(FLOW_RUN_URL_TAG, prefix=True)
    shown = page.dialog()
    page.screenshot("champion-run-tag")
    assert FLOW_RUN_URL_TAG in shown and flow_run_url in shown
    page.close_dialog()


def test_the_run_page_lists_the_decisive_metrics_first_and_stage_durations_after_the_figures(page, swept):
    """MLflow lists a run's metrics in the order its store first received them (not by name), and leaves out
    those stored as NaN (a figure nothing measured; its reason is an engineforge.missing.* tag)."""
    champion = swept.champion_run()
    measured = [name for name, value in champion.data.metrics.items() if math.isfinite(value)]
    page.open(swept.printed("MLflow run", champion.info.run_id))
    page.wait_for(champion.info.run_name, f"Metrics ({len(measured)})", shot="champion-run-metrics",
                  scroll_to=f"Metrics ({len(measured)})")
    # each metric's name links the run's charts
    listed = [text for text, href in page.links() if href.endswith("/model-metrics") and text != "Model metrics"]
    assert sorted(listed) == sorted(measured)
    decisive = [name for name in mlflow_runs.DECISIVE_METRICS if name in measured]
    assert len(decisive) >= 5 and listed[:len(decisive)] == decisive
    assert listed.index("stage_download_duration_s") > listed.index("e2e_ms_p50")  # timings after what was measured


def test_the_registered_version_shows_its_figures_gates_and_the_run_that_measured_it(page, swept):
    champion = swept.champion_run()
    number = swept.run(swept.summary["mlflow"]["run_id"]).data.tags[CHAMPION_VERSION_TAG]
    server_url = swept.links[1][1].split("/#/")[0]
    page.open(f"{server_url}/#/models/{RECIPE}/versions/{number}?workflowType=machine_learning")
    text = page.wait_for(f"Version {number}", "Aliases", "Figures: output_tokens_per_s ", "Gates: passed",
                         f"Measured by: run {champion.info.run_id}", "Lock file: ", shot="registered-version")
    assert re.search(r"Aliases\s*:(\s*@\s*\w+)*\s*@\s*champion\b", text)  # an alias chip: "@", a space, its name
    assert any(champion.info.run_id in href for text, href in page.links() if text == f"run {champion.info.run_id}")


def test_the_prefect_flow_runs_show_the_sweep_and_each_stage_without_spurious_warnings(page, swept):
    parent = swept.run(swept.summary["mlflow"]["run_id"])
    page.open(swept.links[0][1])
    page.wait_for(parent.info.run_name, "Completed", "Subflow Runs", shot="prefect-sweep")
    page.click("Artifacts")
    page.wait_for(f"{RECIPE}-sweep", shot="prefect-sweep-artifacts")
    page.click(f"{RECIPE}-sweep")  # the comparison table's own page
    page.wait_for(f"{swept.summary['champion']} (champion)", f"MLflow: run {parent.info.run_id}", shot="prefect-sweep-table")
    assert [href for text, href in page.links() if text == f"run {parent.info.run_id}" and "workflowType" in href]
    champion = swept.champion_run()
    page.open(swept.printed("Prefect flow run", champion.data.tags[FLOW_RUN_TAG]))
    text = page.wait_for(f"{swept.summary['champion']} · {RECIPE}", "Parent Run", parent.info.run_name,
                         "validate ran in ", "tok/s", "register ran in ", shot="prefect-champion-child")
    assert "Timeout of" not in text and "worker thread" not in text  # one such warning per task once
    mlflow_url = swept.printed("MLflow run", champion.info.run_id)
    assert [href for _, href in page.links() if href == mlflow_url]  # each stage's line links its MLflow run
    page.click("Artifacts")
    page.wait_for(f"{RECIPE}-summary", f"{RECIPE}-validation", "PROGRESS", shot="prefect-artifacts")
    assert re.search(r"download (ran|cached): ", page.text())
