"""workbench.toml parsed once into typed settings, reachable as db.settings; reports and checks read them there."""

from __future__ import annotations

import pytest

import workbench as wb
from workbench import config as C
from workbench.errors import ConfigError, InputError


def _toml(tmp_path, text, name="workbench.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_budgets_and_targets_are_typed(tmp_path):
    p = _toml(tmp_path, "[budget.chat]\nmonthly_usd = 100\nwarn_at = 0.9\n"
                        "[targets.chat]\nlatency_p95_ms_max = 2000\nwau_count_min = 50\n")
    s = C.load_settings(p)
    assert s.budgets == {"chat": C.Budget("chat", 100.0, 0.9)}
    t = s.targets["chat"]
    assert (t["latency_p95_ms"].bound, t["latency_p95_ms"].limit) == ("max", 2000.0)
    assert t["wau_count"].met(49) is False and t["wau_count"].met(50) is True and t["wau_count"].met(None) is None


def test_the_file_is_read_once_and_again_when_it_changes(tmp_path, monkeypatch):
    p = _toml(tmp_path, "[budget.chat]\nmonthly_usd = 100\n")
    reads = []
    real = C.tomllib.loads
    monkeypatch.setattr(C.tomllib, "loads", lambda text: reads.append(1) or real(text))
    C._read.cache_clear()
    for _ in range(5):
        C.load_settings(p)
    assert len(reads) == 1
    import os

    p.write_text("[budget.chat]\nmonthly_usd = 250\n")
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    assert C.load_settings(p).budgets["chat"].monthly_usd == 250.0
    assert len(reads) == 2


def test_connect_carries_the_settings(tmp_path):
    p = _toml(tmp_path, "[budget.chat]\nmonthly_usd = 100\n")
    db = wb.connect(":memory:", config=p)
    assert db.settings.budgets["chat"].monthly_usd == 100.0
    assert db.settings is db.settings  # parsed once per connection
    # budget_status reads the database's settings when no config is passed
    _ = db.duckdb.execute("insert into calls (call_id, ts, feature, status, cost_usd) values "
                          "('a', '2026-03-02 10:00', 'chat', 'ok', 30.0)")
    df, firing = wb.budget_status(db, at="2026-03-10")
    assert df["budget_usd"].to_list() == [100.0] and df["spend_usd"].to_list() == [30.0] and not firing


def test_a_report_takes_its_settings_from_the_database(tmp_path):
    p = _toml(tmp_path, "[targets.chat]\nerror_rate_max = 0.1\n")
    db = wb.connect(":memory:", config=p)
    rep = wb.Report(db, start="2026-01-01", end="2026-01-02")
    assert rep.settings.targets["chat"]["error_rate"].limit == 0.1


@pytest.mark.parametrize("text, key", [
    ("[budget.chat]\nmonthly_usd = -1\n", "monthly_usd"),
    ("[budget.chat]\nmonthly = 1\n", "monthly"),
    ("[targets.chat]\nerror_rate = 0.1\n", "error_rate"),
    ("[reports]\nfeatures = 'chat'\n", "unknown key 'features'"),
    ("[reports]\nwhatif_model = 4\n", "whatif_model must be a non-empty name"),
    ("[reports]\nfeature = ''\n", "feature must be a non-empty name"),
])
def test_bad_settings_name_the_file_and_key(tmp_path, text, key):
    p = _toml(tmp_path, text)
    with pytest.raises(ConfigError, match=key) as exc:
        C.load_settings(p)
    assert "workbench.toml" in str(exc.value) and isinstance(exc.value, InputError)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("text, key", [
    ("[budget.chat]\nmonthly_usd = {v}\n", "monthly_usd"),
    ("[budget.chat]\nmonthly_usd = 100\nwarn_at = {v}\n", "warn_at"),
    ("[targets.chat]\nlatency_p95_ms_max = {v}\n", "latency_p95_ms_max"),
])
def test_a_number_that_is_not_finite_is_refused_naming_the_key(tmp_path, text, key, value):
    """TOML reads nan and inf as floats. Every comparison with nan is false, so a budget or a target of nan never
    fired: an alert silenced by the file that was meant to set it."""
    p = _toml(tmp_path, text.format(v=value))
    with pytest.raises(ConfigError, match=rf"{key} must be a finite number, got {value}"):
        C.load_settings(p)


@pytest.mark.parametrize("key", ["latency_ms", "ttft_p95_ms"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_an_slo_threshold_that_is_not_finite_is_refused_not_always_met(small_demo, tmp_path, capsys, key, value):
    from workbench.cli import main as cli_main

    cfg = {"latency_ms": 100, "latency_target": 0.95, "availability_target": 0.975, "ttft_p95_ms": 100,
           "window_days": 30}
    body = "".join(f"{k} = {value if k == key else v}\n" for k, v in cfg.items())
    p = _toml(tmp_path, f"[slo.support_assistant]\n{body}")
    rc = cli_main(["slo", "--db", str(small_demo), "--config", str(p), "--at", "2026-11-22"])
    err = capsys.readouterr().err
    assert rc == 2 and f"{key} must be a finite number" in err, err


def test_the_reports_section_is_typed(tmp_path):
    s = C.load_settings(_toml(tmp_path, '[reports]\nfeature = "billing"\nwhatif_model = "m-small"\n'))
    assert (s.reports.feature, s.reports.whatif_model, s.reports.environment) == ("billing", "m-small", None)
    assert C.load_settings(_toml(tmp_path, "")).reports == C.ReportSettings()


# --- [targets.*]: every declared target is evaluated, or refused when a report loads the file (a target that is never
# evaluated reads as met). Whether the metric exists is the registry's to say (workbench.metrics.core.check_targets,
# a layer above workbench.config); a report checks it when it reads its settings.

def _report_settings(p):
    return wb.Report(":memory:", start="2026-01-01", end="2026-01-08", config=p).settings


def test_a_misspelt_target_metric_is_refused_with_the_closest_name(tmp_path):
    # hallucinaton_rate_max was accepted without a word and never evaluated
    p = _toml(tmp_path, "[targets.chat]\nlatency_p95_ms_max = 1000\nhallucinaton_rate_max = 0.05\n")
    with pytest.raises(ConfigError) as exc:
        _report_settings(p)
    msg = str(exc.value)
    assert "workbench.toml [targets.chat]" in msg and "hallucinaton_rate_max" in msg, msg
    assert "did you mean 'hallucination_rate'" in msg, msg


def test_both_bounds_on_one_metric_are_refused_naming_both_keys(tmp_path):
    # the second silently replaced the first
    p = _toml(tmp_path, "[targets.chat]\nlatency_p95_ms_max = 1000\nlatency_p95_ms_min = 10\n")
    with pytest.raises(ConfigError, match=r"\[targets\.chat\].*latency_p95_ms_max.*latency_p95_ms_min"):
        C.load_settings(p)


@pytest.mark.parametrize("key, words", [
    ("error_rate_min", "error_rate_max"),        # better lower: a floor on errors is a slip for a ceiling
    ("wau_count_max", "wau_count_min"),          # better higher
    ("retention_rate_min", "no one value"),      # one value per cohort and offset
    ("funnel_conversion_rate_min", "no one value"),  # one value per step
    ("cost_change_usd_max", "no one value"),     # one value per model
    ("lifecycle_count_min", "better"),           # a breakdown, neither direction is better
    ("feedback_rate_min", "better"),
    ("whatif_cost_usd_max", "model"),            # needs an option a target cannot give
])
def test_a_target_that_cannot_be_evaluated_is_refused_saying_why(tmp_path, key, words):
    p = _toml(tmp_path, f"[targets.chat]\n{key} = 0.5\n")
    with pytest.raises(ConfigError, match=rf"workbench\.toml \[targets\.chat\]: {key}") as exc:
        _report_settings(p)
    assert words in str(exc.value), str(exc.value)


def test_a_target_on_any_metric_of_one_value_per_feature_is_accepted(tmp_path):
    from workbench.metrics.core import contracts

    ok = {"error_rate_max", "timeout_rate_max", "output_tokens_per_s_min", "mttr_minutes_max", "thumbs_up_rate_min",
          "unpriced_rate_max", "tool_call_success_rate_min", "cost_usd_max", "dau_mau_ratio_min"}
    s = _report_settings(_toml(tmp_path, "[targets.chat]\n" + "".join(f"{k} = 1\n" for k in sorted(ok))))
    assert {f"{m}_{t.bound}" for m, t in s.targets["chat"].items()} == ok
    assert all(m in contracts() for m in s.targets["chat"])


def test_a_config_path_that_is_no_readable_text_file_is_a_config_error(tmp_path, capsys):
    """`--config DIR` (or a binary file) raised IsADirectoryError / UnicodeDecodeError with a traceback, in every verb."""
    from workbench.cli import main

    binary = tmp_path / "workbench.toml"
    binary.write_bytes(b"[budget.chat]\nmonthly_usd = 1\n\xff\xfe\x00")
    wb.connect(tmp_path / "wb.duckdb").close()
    for path, why in ((tmp_path, "is a folder"), (binary, "not UTF-8 text")):
        with pytest.raises(ConfigError, match=rf"{path.name}: {why}"):
            C.load_config(path)
        assert main(["slo", "--db", str(tmp_path / "wb.duckdb"), "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert why in err and "Traceback" not in err


@pytest.mark.parametrize("text, table, hint", [
    ("[slos.chat]\navailability_target = 0.99\n[budget.chat]\nmonthly_usd = 10\n", "slos", "slo"),
    ("[slo.chat]\navailability_target = 0.99\n[budgets.chat]\nmonthly_usd = 10\n", "budgets", "budget"),
    ('[slo.chat]\navailability_target = 0.99\n[notfiy]\nwebhook = "http://127.0.0.1:9/hook"\n', "notfiy", "notify"),
    ("[slo.chat]\navailability_target = 0.99\n[target.chat]\nerror_rate_max = 0.1\n", "target", "targets"),
], ids=["slos", "budgets", "notfiy", "target"])
def test_a_misspelt_table_name_is_refused_with_the_closest_one(tmp_path, text, table, hint):
    # `[slos.chat]` was ignored: `schedule run` read "no SLO declared", skipped the check that would page, said nothing
    # and exited 0; `[notfiy]` left [notify] empty and `[target.chat]` left the scorecard without targets
    import datetime as dt

    from workbench.reports import schedule

    p = _toml(tmp_path, text)
    pattern = rf"workbench.toml: unknown table \[{table}\]; did you mean \[{hint}\]\?"
    with pytest.raises(ConfigError, match=pattern):
        C.load_config(p)
    now = dt.datetime(2026, 11, 24, 6)
    with wb.connect(tmp_path / "w.duckdb") as db:
        db.duckdb.executemany("insert into calls (call_id, ts, feature, status) values (?, ?, 'chat', 'error')",
                              [(f"c{i}", now - dt.timedelta(minutes=i + 1)) for i in range(60)])
    with pytest.raises(ConfigError, match=pattern):
        schedule.run(tmp_path / "w.duckdb", out=tmp_path / "r", config=p, now=now, names=["none"])
    assert C.load_config(_toml(tmp_path, "", "empty.toml")).data == {}


@pytest.mark.parametrize("config", [5, 1.5, True, ["workbench.toml"], {"budget": {}}, b"workbench.toml", object()])
def test_a_config_that_is_no_path_config_or_settings_is_an_error_naming_it(tmp_path, monkeypatch, config):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TypeError, match=r"config must be the path of a workbench.toml, a Config or Settings, got "):
        C.load_config(config)
    with wb.connect(tmp_path / "w.duckdb") as db:
        for fn in (wb.budget_status, wb.slo_status, wb.slo_report):
            with pytest.raises(TypeError, match=r"config must be the path of a workbench.toml"):
                fn(db, config=config)
