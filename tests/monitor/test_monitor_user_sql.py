"""User SQL in the monitor (a feature expression, a KPI) that DuckDB rejects while running on the data is the
user's error: exit 2, naming the KPI or the feature's expression, no traceback."""
from __future__ import annotations

from tests.conftest import run_cli
from tests.production_fixture import production_project, production_template  # noqa: F401


def test_a_feature_or_kpi_failing_on_the_data_is_exit_2_naming_it(production_project):  # noqa: F811
    project = production_project
    r = run_cli("monitor", "monitor.features.input_length.expr='CAST(input AS INTEGER)'", cwd=project)
    assert r.code == 2, r
    # the drift rule whose sample ran the feature's expression is named
    assert "drift rule 'input_length_psi': the SQL written in the config (`CAST(input AS INTEGER)`)" in r.stderr
    assert "Conversion Error" in r.stderr and "Traceback" not in r.stderr
    kpi = run_cli("monitor", "monitor.kpis.revenue.value='coalesce(revenue, 0) + CAST(\\'x\\' AS INTEGER)'",
                  cwd=project)
    assert kpi.code == 2, kpi
    assert "KPI 'revenue': the SQL written in the config (`coalesce(revenue, 0) + CAST('x' AS INTEGER)`" \
        in kpi.stderr
    ok = run_cli("monitor", cwd=project)
    assert ok.code in (0, 1), ok  # the same data with the bundled expressions: a verdict, not an error
