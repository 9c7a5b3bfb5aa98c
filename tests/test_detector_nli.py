"""The model tier (`nli:PATH`) end to end, offline, on a tiny ONNX graph and a tiny tokenizer built here.

The graph is a bag of words: logits = sum over the pair's tokens of a 3-column embedding (contradiction, neutral,
entailment). Words of the test vocabulary push "entailment"; the word "unicorn" pushes "contradiction" hard, so the
support of a claim that mentions it can be computed by hand.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
tokenizers = pytest.importorskip("tokenizers")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from workbench.errors import ConfigError, MissingFileError, ParameterError  # noqa: E402
from workbench.eval import detector as D  # noqa: E402
from workbench.eval.nli import NLIDetector, load_detector  # noqa: E402

WORDS = "the tower was completed in 1889 paris it is tall unicorn built by gustave eiffel".split()
ROOT = Path(__file__).resolve().parents[1]


def _model_dir(tmp: Path, *, with_config: bool = True, columns: tuple[int, ...] = (0, 1, 2),
               int_type: int = TensorProto.INT64, extra_output: bool = False, onnx_dir: str = "",
               type_ids: bool = False) -> Path:
    """The bag-of-words model; ``columns`` picks which of (contradiction, neutral, entailment) it outputs, ``int_type``
    its input type, ``extra_output`` puts a hidden-state output before ``logits``, ``onnx_dir`` a sub-folder for
    model.onnx (the layout of exported model repositories), ``type_ids`` a token_type_ids input (as BERT exports
    have) that adds 0.1 to the first column per token of the second segment."""
    tmp.mkdir(parents=True, exist_ok=True)
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, **{w: i + 4 for i, w in enumerate(WORDS)}}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = tokenizers.normalizers.Lowercase()
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tok.post_processor = tokenizers.processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tok.save(str(tmp / "tokenizer.json"))
    emb = np.zeros((len(vocab), 3), np.float32)
    emb[4:, 2] = 0.2  # ordinary words: a little entailment each
    emb[vocab["unicorn"], 0] = 10.0  # "unicorn": strong contradiction
    emb[1, 1] = 0.5  # unknown words: neutral
    emb = np.ascontiguousarray(emb[:, list(columns)])
    nodes = [
        helper.make_node("Gather", ["emb", "input_ids"], ["e"]),  # (b, s, columns)
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axis2"], ["m3"]),
        helper.make_node("Mul", ["e", "m3"], ["em"]),
        helper.make_node("ReduceSum", ["em", "axis1"], ["logits"], keepdims=0),
    ]
    inputs = [helper.make_tensor_value_info("input_ids", int_type, ["b", "s"]),
              helper.make_tensor_value_info("attention_mask", int_type, ["b", "s"])]
    if type_ids:  # logits += 0.1 * (number of second-segment tokens) in column 0
        inputs.append(helper.make_tensor_value_info("token_type_ids", int_type, ["b", "s"]))
        nodes[-1] = helper.make_node("ReduceSum", ["em", "axis1"], ["bag"], keepdims=0)
        nodes += [
            helper.make_node("Cast", ["token_type_ids"], ["tt"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", ["tt", "axis1"], ["nt"], keepdims=1),  # (b, 1)
            helper.make_node("Mul", ["nt", "onehot"], ["shift"]),  # (b, columns)
            helper.make_node("Add", ["bag", "shift"], ["logits"]),
        ]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["b", len(columns)])]
    if extra_output:
        nodes.append(helper.make_node("Identity", ["em"], ["last_hidden_state"]))
        outputs.insert(0, helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                                        ["b", "s", len(columns)]))
    onehot = np.zeros((1, len(columns)), np.float32)
    onehot[0, 0] = 0.1
    graph = helper.make_graph(
        nodes, "bag_nli", inputs, outputs,
        [numpy_helper.from_array(emb, "emb"), numpy_helper.from_array(np.array([2], np.int64), "axis2"),
         numpy_helper.from_array(np.array([1], np.int64), "axis1"), numpy_helper.from_array(onehot, "onehot")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    (tmp / onnx_dir).mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(tmp / onnx_dir / "model.onnx"))
    if with_config:
        (tmp / "config.json").write_text(json.dumps({"id2label": {"0": "CONTRADICTION", "1": "NEUTRAL",
                                                                  "2": "ENTAILMENT"}}))
    return tmp


def _by_hand(premise: str, hypothesis: str) -> float:
    """Softmax entailment probability of the bag-of-words model, computed without onnxruntime."""
    toks = [w.lower() for w in (premise + " " + hypothesis).replace(".", " . ").split()]
    z = np.zeros(3)
    for t in toks:
        if t == "unicorn":  # a vocabulary word too: the little entailment push as well
            z[0] += 10.0
            z[2] += 0.2
        elif t in WORDS:
            z[2] += 0.2
        else:
            z[1] += 0.5
    e = np.exp(z - z.max())
    return float(e[2] / e.sum())


@pytest.fixture()
def model(tmp_path):
    return _model_dir(tmp_path)


CTX = ["The tower was completed in 1889 in Paris.", "It was built by Gustave Eiffel."]


def test_support_matches_the_hand_computed_model(model):
    det = NLIDetector(model)
    got = det.support([(CTX[0], "It is tall."), (CTX[0], "The unicorn is tall.")])
    assert got[0] == pytest.approx(_by_hand(CTX[0], "It is tall."), abs=1e-5)
    assert got[1] == pytest.approx(_by_hand(CTX[0], "The unicorn is tall."), abs=1e-5)
    assert got[1] < 1e-3 < 0.5 < got[0]


def test_detect_flags_the_contradicted_claim_with_model_evidence(model):
    det = NLIDetector(model)
    good = det.detect("The tower was completed in 1889 in Paris.", CTX)
    bad = det.detect("The tower was completed in 1889 in Paris. The unicorn built it.", CTX)
    assert good.score < bad.score
    assert bad.claims[1].support < 0.01
    assert bad.claims[1].reason  # lexical ("entity ...") or the model's
    assert good.claims[0].support == pytest.approx(max(_by_hand(c, good.claims[0].text) for c in CTX), abs=1e-4)
    assert det.detect("", CTX).unscorable


def test_batching_and_the_content_hash_cache(model):
    small, big = NLIDetector(model, batch_size=1), NLIDetector(model, batch_size=64)
    pairs = [(c, h) for c in CTX for h in ["It is tall.", "The unicorn is tall.", "Paris."]]
    np.testing.assert_allclose(small.support(pairs), big.support(pairs), atol=1e-6)
    assert small.pairs_scored == 6
    small.support(pairs + pairs)
    assert small.pairs_scored == 6 and small.cache_hits == 12  # nothing scored twice


def test_version_names_the_model_and_changes_with_it(model, tmp_path_factory):
    det = NLIDetector(model)
    assert det.DETECTOR_VERSION.startswith(D.DETECTOR_VERSION + "+") and det.DETECTOR_VERSION.endswith(".uncal")
    other = _model_dir(tmp_path_factory.mktemp("m2"))
    emb_changed = NLIDetector(other)
    assert emb_changed.DETECTOR_VERSION == det.DETECTOR_VERSION  # same bytes, same version
    (other / "tokenizer.json").write_text((other / "tokenizer.json").read_text().replace('"tall"', '"short"'))
    assert NLIDetector(other).DETECTOR_VERSION != det.DETECTOR_VERSION
    relabelled = _model_dir(tmp_path_factory.mktemp("m3"), with_config=False)  # the support column moves with config
    (relabelled / "config.json").write_text(json.dumps({"id2label": {"0": "entailment", "1": "neutral", "2": "x"}}))
    assert NLIDetector(relabelled).DETECTOR_VERSION != det.DETECTOR_VERSION


def test_calibration_is_fitted_saved_and_reloaded(model):
    rows = []
    for i in range(20):
        rows.append({"answer": "The tower was completed in 1889 in Paris.", "contexts": CTX, "label": 0, "source": "a"})
        rows.append({"answer": "The unicorn was completed in Paris.", "contexts": CTX, "label": 1, "source": "a"})
    det = NLIDetector(model)
    cal = det.fit_calibration(rows, save=True)
    assert all(c >= 0 for c in cal["coef"]) and cal["rows"] == 40
    again = NLIDetector(model)
    assert again.calibration == cal and re.search(r"\.cal\.[0-9a-f]{8}$", again.DETECTOR_VERSION)
    p = [d.score for d in again.detect_batch(rows)]
    assert np.mean(p[1::2]) > 0.8 and np.mean(p[0::2]) < 0.2


def test_a_new_calibration_is_a_new_version_and_a_stale_or_broken_one_is_refused(model):
    """The version named only "cal": a calibration fitted again with other weights kept the version, so the answers
    scored with the old weights were never scored again; and calibration.json was applied unchecked."""
    rows = [{"answer": a, "contexts": CTX, "label": lab, "source": "a"}
            for a, lab in [("The tower was completed in 1889 in Paris.", 0), ("The unicorn was completed.", 1)] * 10]
    det = NLIDetector(model)
    first = det.fit_calibration(rows, save=True)
    v1 = NLIDetector(model).DETECTOR_VERSION
    second = det.fit_calibration(rows[:12] + [{**rows[0], "label": 1}] * 4, save=True)
    assert second["coef"] != first["coef"] and NLIDetector(model).DETECTOR_VERSION != v1
    path = model / "calibration.json"
    path.write_text(json.dumps({**second, "detector_version": "2.6.1"}))
    with pytest.raises(ConfigError, match=r"calibration.json: fitted with detector support 2.6.1.*fit it again"):
        NLIDetector(model)
    path.write_text(json.dumps({"coef": [1.0, -2.0], "intercept": 0.0}))
    with pytest.raises(ConfigError, match="'coef' must be two non-negative numbers"):
        NLIDetector(model)
    path.write_text("{")
    with pytest.raises(ConfigError, match="calibration.json: not a calibration file"):
        NLIDetector(model)


def test_errors_name_the_missing_file_and_bad_spec(tmp_path):
    with pytest.raises(MissingFileError, match="model.onnx is missing"):
        NLIDetector(tmp_path)
    with pytest.raises(ParameterError, match="nli:PATH"):
        load_detector("nli:  ")
    with pytest.raises(ParameterError, match="unknown detector"):
        load_detector("bert")
    m = _model_dir(tmp_path, with_config=False)
    (m / "config.json").write_text(json.dumps({"id2label": {"0": "A", "1": "B", "2": "C"}}))
    with pytest.raises(ConfigError, match="id2label"):
        NLIDetector(m)


def test_config_section_selects_the_model(model, tmp_path):
    cfg = tmp_path / "workbench.toml"
    cfg.write_text(f'[detector]\nmodel = "{model.as_posix()}"\nbatch_size = 4\n')
    det = load_detector(None, config=cfg)
    assert isinstance(det, NLIDetector) and det.batch_size == 4
    cfg.write_text('[detector]\nbatch_size = 0\nmodel = "x"\n')
    with pytest.raises(ConfigError, match=r"workbench.toml \[detector\]: batch_size"):
        load_detector(None, config=cfg)
    (tmp_path / "plain.toml").write_text("[detector]\n")
    assert load_detector(None, config=tmp_path / "plain.toml") is D  # no model: the offline detector


def test_cli_score_and_benchmark_with_the_model_offline(model, tmp_path):
    rows = [{"id": f"r{i}", "answer": a, "contexts": CTX, "label": l, "source": s}
            for i, (a, l, s) in enumerate([("The tower was completed in 1889.", 0, "a"),
                                           ("The unicorn was completed in 1889.", 1, "a"),
                                           ("It was built by Gustave Eiffel.", 0, "b"),
                                           ("It was built by a unicorn in Paris.", 1, "b")] * 3)]
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    exe = [sys.executable, "-m", "workbench.cli"]
    r = subprocess.run([*exe, "hallucination", "score", str(inp), "--out", str(out), "--detector", f"nli:{model}"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["detector"] for g in got] == ["nli"] * 12
    assert got[1]["score"] > got[0]["score"]
    r = subprocess.run([*exe, "hallucination", "benchmark", str(inp), "--detector", f"nli:{model}", "--reps", "50",
                        "--json"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    overall = [s for s in res["sources"] if s["source"] == "overall"][0]
    assert overall["auroc"] == 1.0 and overall["n"] == 12
    assert res["reliability"][-1]["bin"] == "ECE"
    r = subprocess.run([*exe, "hallucination", "score", str(inp), "--out", str(out), "--detector", "nli:/nope"],
                       capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2 and "/nope" in r.stderr


def test_evaluate_writes_model_tier_scores_under_its_own_version(model):
    import workbench as wb
    from workbench.eval.score import evaluate

    db = wb.connect(":memory:")
    db.duckdb.execute("insert into answers (call_id, contexts, answer) values "
                      "('a', ['The tower was completed in 1889 in Paris.'], 'The tower was completed in 1889.'), "
                      "('b', ['The tower was completed in 1889 in Paris.'], 'The unicorn was completed in 1889.')")
    s = evaluate(db, detector=f"nli:{model}", progress=False)
    assert (s["evaluator"], s["scored"]) == ("nli", 2)
    assert s["version"] == NLIDetector(model).DETECTOR_VERSION
    scores = dict(db.sql("select call_id, value from evals where metric = 'hallucination_score'").rows())
    assert scores["b"] > scores["a"]
    again = evaluate(db, detector=f"nli:{model}", progress=False)
    assert again["skipped"] == 2 and again["scored"] == 0  # same model, same version: nothing re-scored


# -- exports as they come: label names, layouts, outputs, input types, positions, a path with ~ ---------------------


@pytest.mark.parametrize("labels", [
    {"0": "inconsistent", "1": "neutral", "2": "consistent"},
    {"0": "not_entailment", "1": "neutral", "2": "entailment"},
    {"0": "non-entailment", "1": "neutral", "2": "ENTAILMENT"},
    {"0": "unsupported", "1": "neutral", "2": "supported"},
    {"0": "unfaithful", "1": "neutral", "2": "faithful"},
])
def test_a_label_that_negates_support_is_never_the_support_column(tmp_path, labels):
    m = _model_dir(tmp_path, with_config=False)
    (m / "config.json").write_text(json.dumps({"id2label": labels}))
    det = NLIDetector(m)
    assert det.support_index == 2
    got = det.support([(CTX[0], "The unicorn is tall.")])
    assert got[0] == pytest.approx(_by_hand(CTX[0], "The unicorn is tall."), abs=1e-5)  # not the contradiction column


def test_generic_label_names_fall_back_to_the_column_rule_and_two_support_labels_are_refused(tmp_path_factory):
    two = _model_dir(tmp_path_factory.mktemp("two"), with_config=False, columns=(0, 2))  # contradiction, entailment
    (two / "config.json").write_text(json.dumps({"id2label": {"0": "LABEL_0", "1": "LABEL_1"}}))
    det = NLIDetector(two)
    z = np.array([0.0, 0.0])
    for t in "the unicorn is tall .".split():
        z += [10.0, 0.2] if t == "unicorn" else [0.0, 0.2] if t in WORDS else [0.0, 0.0]
    for t in CTX[0].lower().replace(".", " . ").split():
        z += [0.0, 0.2] if t in WORDS else [0.0, 0.0]
    want = float(np.exp(z[1]) / np.exp(z).sum())
    assert det.support([(CTX[0], "The unicorn is tall.")])[0] == pytest.approx(want, abs=1e-5)
    three = _model_dir(tmp_path_factory.mktemp("three"), with_config=False)
    (three / "config.json").write_text(json.dumps({"id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}}))
    with pytest.raises(ConfigError, match="id2label"):
        NLIDetector(three)
    (three / "config.json").write_text(json.dumps({"id2label": {"0": "entailment", "1": "neutral", "2": "supported"}}))
    with pytest.raises(ConfigError, match="entailment.*supported|two labels"):
        NLIDetector(three)
    (three / "config.json").write_text('{"id2label": {"0": "entailment",')
    with pytest.raises(ConfigError, match=r"config.json is not JSON.*line 1"):
        NLIDetector(three)
    (three / "config.json").unlink()  # three columns and no names at all: refused when loaded, not on first use
    with pytest.raises(ConfigError, match="3 labels.*is missing"):
        NLIDetector(three)


def test_an_exported_repository_layout_with_the_model_under_onnx_loads(tmp_path):
    m = _model_dir(tmp_path, onnx_dir="onnx")
    assert not (m / "model.onnx").exists()
    det = NLIDetector(m)
    assert det.support([(CTX[0], "It is tall.")])[0] == pytest.approx(_by_hand(CTX[0], "It is tall."), abs=1e-5)


def test_the_logits_output_is_read_when_the_model_has_several(tmp_path):
    det = NLIDetector(_model_dir(tmp_path, extra_output=True))
    assert det.support([(CTX[0], "It is tall.")])[0] == pytest.approx(_by_hand(CTX[0], "It is tall."), abs=1e-5)


def test_int32_inputs_are_fed_as_int32(tmp_path):
    det = NLIDetector(_model_dir(tmp_path, int_type=TensorProto.INT32))
    assert det.support([(CTX[0], "It is tall.")])[0] == pytest.approx(_by_hand(CTX[0], "It is tall."), abs=1e-5)


@pytest.mark.parametrize("model_type, positions, want", [("bert", 12, 12), ("roberta", 14, 12), ("bert", 4096, 256)])
def test_pairs_are_cut_to_the_positions_the_model_has(tmp_path, model_type, positions, want):
    m = _model_dir(tmp_path, with_config=False)
    (m / "config.json").write_text(json.dumps({"model_type": model_type, "max_position_embeddings": positions,
                                               "id2label": {"0": "contradiction", "1": "neutral", "2": "entailment"}}))
    det = NLIDetector(m)
    long = " ".join(["the tower was completed in paris"] * 80)
    assert len(det.tokenizer.encode(long, "it is tall").ids) == want


def test_a_model_folder_written_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    _model_dir(tmp_path / "models" / "nli")
    assert isinstance(load_detector("nli:~/models/nli"), NLIDetector)
    cfg = tmp_path / "workbench.toml"
    cfg.write_text('[detector]\nmodel = "~/models/nli"\n')
    assert isinstance(load_detector(None, config=cfg), NLIDetector)


def test_token_type_ids_are_fed_and_one_column_is_a_support_logit(tmp_path_factory):
    # A BERT export takes token_type_ids: the second segment's tokens (the claim, [SEP] included) are type 1.
    det = NLIDetector(_model_dir(tmp_path_factory.mktemp("tt"), type_ids=True))
    hyp = "It is tall."
    n_second = len(hyp.replace(".", " . ").split()) + 1  # its tokens and the closing [SEP]
    toks = [w.lower() for w in (CTX[0] + " " + hyp).replace(".", " . ").split()]
    z = np.zeros(3)
    z[0] += 0.1 * n_second
    for t in toks:
        z[2 if t in WORDS else 1] += 0.2 if t in WORDS else 0.5
    want = float(np.exp(z[2] - z.max()) / np.exp(z - z.max()).sum())
    assert det.support([(CTX[0], hyp)])[0] == pytest.approx(want, abs=1e-5)
    one = NLIDetector(_model_dir(tmp_path_factory.mktemp("one"), with_config=False, columns=(2,)))
    z = sum(0.2 for t in toks if t in WORDS)  # the entailment column alone: a logit, read through a sigmoid
    assert one.support([(CTX[0], hyp)])[0] == pytest.approx(1 / (1 + np.exp(-z)), abs=1e-5)


def test_the_metrics_read_the_scores_of_the_model_workbench_toml_names(model, tmp_path):
    """[detector] model = PATH: evaluate() scores with the model and hallucination_rate reads those scores by default
    (before, the metrics looked for the offline detector's scores and found none)."""
    import workbench as wb
    from workbench.detector_config import detector_identity

    toml = tmp_path / "workbench.toml"
    toml.write_text(f'[detector]\nmodel = "{model.as_posix()}"\n')
    assert detector_identity(toml) == ("nli", NLIDetector(model).DETECTOR_VERSION)
    db = wb.connect(":memory:", config=toml)
    ctx = "['The tower was completed in 1889 in Paris.']"
    db.duckdb.execute("insert into calls (call_id, ts, feature, status) values ('a', '2026-01-01', 'chat', 'ok'), "
                      "('b', '2026-01-01', 'chat', 'ok');"
                      "insert into answers (call_id, ts, contexts, answer) values "
                      f"('a', '2026-01-01', {ctx}, 'The tower was completed in 1889.'), "
                      f"('b', '2026-01-01', {ctx}, 'The unicorn was completed in 1889.')")
    s = wb.evaluate(db, progress=False)
    assert (s["evaluator"], s["scored"]) == ("nli", 2)
    rate = wb.hallucination_rate(db, period="all")
    assert rate["n"].to_list() == [2]


def test_a_broken_model_tokenizer_or_id2label_is_an_error_naming_the_file(tmp_path):
    # each was a traceback from onnxruntime, tokenizers or the label lookup (exit 1: read as an alert)
    m = _model_dir(tmp_path / "m")
    good = (m / "model.onnx").read_bytes()
    (m / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match=r"model.onnx cannot be loaded as an ONNX model"):
        NLIDetector(m)
    (m / "model.onnx").write_bytes(good)
    tok = (m / "tokenizer.json").read_text()
    (m / "tokenizer.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"tokenizer.json cannot be loaded as a tokenizer"):
        NLIDetector(m)
    (m / "tokenizer.json").write_text(tok)
    for labels in (["contradiction", "neutral", "entailment"], "entailment", {"a": "contradiction", "c": "entailment"}):
        (m / "config.json").write_text(json.dumps({"id2label": labels}))
        with pytest.raises(ConfigError, match=r"config.json: id2label must map output columns"):
            NLIDetector(m)


def test_a_model_output_of_another_shape_or_not_finite_stops_the_scoring_with_its_reason(tmp_path, monkeypatch):
    det = NLIDetector(_model_dir(tmp_path / "m"))
    pairs = [("The tower opened in 1889.", "It opened in 1889.")] * 2
    monkeypatch.setattr(det.session, "run", lambda names, feed: [np.zeros((2, 7, 3), np.float32)])
    with pytest.raises(ConfigError, match=r"has shape \(2, 7, 3\); a pair classifier gives \(pairs, labels\)"):
        det._run(pairs)  # a token-classification export: TypeError from numpy before
    monkeypatch.setattr(det.session, "run", lambda names, feed: [np.full((2, 3), np.nan, np.float32)])
    with pytest.raises(ConfigError, match=r"holds 6 value\(s\) that are not finite"):
        det._run(pairs)  # NaN logits labelled every answer supported, silently
