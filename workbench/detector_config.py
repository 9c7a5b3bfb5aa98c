"""Which hallucination detector ``workbench.toml`` names, and the files that say what it is, below every hop that
needs them: the scoring (``workbench.eval``) loads the detector, the hallucination metrics (``workbench.metrics``) read
its scores by default, and neither loads a model to know its name and version.

``[detector]`` of ``workbench.toml``::

    [detector]
    calibration = "calibration.json"   # the offline detector calibrated on the team's labels (workbench.eval.calibrate)
    # or
    model = "models/nli"               # the model tier (workbench.eval.nli), with optional batch_size, max_length

Paths are relative to the ``workbench.toml`` they are written in. Without a ``[detector]`` section: the offline
detector as shipped. A calibration file (:class:`Calibration`, written by ``workbench hallucination calibrate``) holds
Platt scaling of the offline detector's probability; a model folder's version hashes its files, once per file state.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import ConfigError, MissingFileError
from workbench.schema import DETECTOR_NAME, DETECTOR_VERSION

__all__ = ["Calibration", "DetectorChoice", "calibration_target", "detector_choice", "detector_identity",
           "model_calibration", "model_file", "model_hash", "model_version", "read_calibration", "write_calibration"]

#: What a calibration file says it is.
KIND = "platt"
#: Probabilities are clipped to [EPS, 1 - EPS] before their log-odds are taken.
EPS = 1e-12
_KEYS = ("model", "calibration", "batch_size", "max_length")


def _finite(v: Any) -> bool:
    """A JSON number (not a boolean) that is finite."""
    try:
        return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)
    except OverflowError:  # an integer of hundreds of digits (JSON allows it): no float holds it
        return False


def _json_file(path: Path) -> Any:
    """The JSON value of a calibration file; a :class:`ConfigError` naming the file when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark: Notepad saves one
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a calibration file ({exc})") from None


def _calibration_tag(key: list) -> str:
    """``cal.`` and 8 hex digits of the SHA-1 of what decides a calibration's probabilities (``key``, as JSON)."""
    return "cal." + hashlib.sha1(json.dumps(key).encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Calibration:
    """Platt scaling of the offline detector's probability, fitted on labelled answers.

    Attributes
    ----------
    scale, shift : float
        ``p' = sigmoid(scale * logit(p) + shift)``; ``scale > 0`` (the order of the answers is kept).
    detector_version : str
        The offline detector version it was fitted on (it applies to no other).
    rows, hallucinated : int
        Labelled answers the fit used (scorable ones) and how many of them are labelled 1.
    report : dict
        What the fit measured: cross-validated calibration error and Brier score before and after, the labels' AUROC.

    Examples
    --------
    >>> c = Calibration(scale=2.0, shift=-1.0, detector_version="2.7.0", rows=100, hallucinated=30)
    >>> round(c.apply(0.5), 4)          # sigmoid(2 * 0 - 1)
    0.2689
    >>> c.tag
    'cal.ebb66bc3'
    """

    scale: float
    shift: float
    detector_version: str
    rows: int
    hallucinated: int
    report: dict = field(default_factory=dict, compare=False)

    @property
    def tag(self) -> str:
        """``cal.`` and 8 hex digits of a hash of the mapping and the version it applies to."""
        return _calibration_tag([KIND, repr(float(self.scale)), repr(float(self.shift)), self.detector_version])

    @property
    def version(self) -> str:
        """The version the calibrated detector writes its scores under: the detector's, ``+``, :attr:`tag`."""
        return f"{self.detector_version}+{self.tag}"

    def apply(self, p: float) -> float:
        """The calibrated probability of the detector's probability ``p``."""
        q = min(max(float(p), EPS), 1 - EPS)
        z = self.scale * math.log(q / (1 - q)) + self.shift
        return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))

    def check(self, where: str = "calibration") -> "Calibration":
        """This calibration, when it was fitted on the installed detector version; else a :class:`ConfigError`."""
        if self.detector_version != DETECTOR_VERSION:
            raise ConfigError(f"{where}: fitted for detector {DETECTOR_NAME} {self.detector_version}, this is "
                              f"{DETECTOR_VERSION}: fit it again (`workbench hallucination calibrate LABELLED.jsonl "
                              "--out PATH`)")
        return self

    def to_json(self) -> dict:
        return {"calibration": KIND, "detector": DETECTOR_NAME, "detector_version": self.detector_version,
                "scale": self.scale, "shift": self.shift, "rows": self.rows, "hallucinated": self.hallucinated,
                "report": self.report}


def write_calibration(cal: Calibration, path: str | Path) -> Path:
    """Write ``cal`` as JSON to ``path`` (its folder must exist); returns the path.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> c = Calibration(scale=1.5, shift=-0.5, detector_version="2.7.0", rows=120, hallucinated=40)
    >>> p = write_calibration(c, pathlib.Path(tempfile.mkdtemp()) / "cal.json")
    >>> back = read_calibration(p); (back.scale, back.shift, back.tag == c.tag)
    (1.5, -0.5, True)
    """
    path = calibration_target(path)
    path.write_text(json.dumps(cal.to_json(), indent=2) + "\n", encoding="utf-8")
    return path


def calibration_target(path: str | Path) -> Path:
    """The path a calibration will be written to, checked before anything is fitted: its folder must exist, and a file
    already there must be a calibration (the next fit replaces it; any other file, such as the labelled answers named
    twice, is not overwritten).

    >>> calibration_target("/no/such/folder/cal.json")
    Traceback (most recent call last):
    ...
    workbench.errors.MissingFileError: calibration: folder /no/such/folder does not exist
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "labelled.jsonl"
    >>> _ = p.write_text('{"answer": "a", "contexts": ["b"], "label": 1}\\n')
    >>> calibration_target(p)
    Traceback (most recent call last):
    ...
    workbench.errors.ParameterError: calibration: ...labelled.jsonl exists and is not a calibration file: it is not ...
    """
    from workbench.errors import ParameterError

    path = Path(path).expanduser()
    if path.is_dir():
        raise ParameterError(f"calibration: {path} is a folder: name the file to write, e.g. "
                             f"{path / 'calibration.json'}")
    if not path.parent.is_dir():
        raise MissingFileError(f"calibration: folder {path.parent} does not exist")
    if path.exists():
        try:  # a calibration is a few hundred bytes: a large file is something else, not read whole to say so
            spec = _json_file(path) if path.stat().st_size < 1 << 20 else None
        except (ConfigError, OSError):
            spec = None
        if not (isinstance(spec, dict) and spec.get("calibration") == KIND):
            raise ParameterError(f"calibration: {path} exists and is not a calibration file: it is not overwritten "
                                 "(name another file)")
    return path


def read_calibration(path: str | Path) -> Calibration:
    """The calibration a file written by :func:`write_calibration` holds.

    Raises
    ------
    MissingFileError
        No such file.
    ConfigError
        Not JSON, not a calibration of the offline detector, or a field missing or of the wrong type: the message
        names the file and the field.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "cal.json"
    >>> _ = p.write_text('{"calibration": "platt", "detector": "support", "detector_version": "2.7.0", "scale": -1}')
    >>> read_calibration(p)
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: ...cal.json: field 'scale' must be a number > 0, got -1
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(f"calibration: file {path} does not exist")
    spec = _json_file(path)
    if not isinstance(spec, dict) or spec.get("calibration") != KIND or spec.get("detector") != DETECTOR_NAME:
        raise ConfigError(f"{path}: not a calibration of the offline detector (expected \"calibration\": \"{KIND}\" "
                          f"and \"detector\": \"{DETECTOR_NAME}\", as `workbench hallucination calibrate` "
                          "writes)")

    def number(name: str, positive: bool = False) -> float:
        v = spec.get(name)
        if not _finite(v) or (positive and v <= 0):
            raise ConfigError(f"{path}: field {name!r} must be a {'number > 0' if positive else 'finite number'}, "
                              f"got {v!r}")
        return float(v)

    scale, shift = number("scale", positive=True), number("shift")
    version = spec.get("detector_version")
    if not isinstance(version, str) or not version:
        raise ConfigError(f"{path}: field 'detector_version' must be the detector version it was fitted on, got "
                          f"{version!r}")
    counts = [spec.get(k, 0) for k in ("rows", "hallucinated")]
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
        raise ConfigError(f"{path}: fields 'rows' and 'hallucinated' must be counts, got {counts}")
    report = spec.get("report") if isinstance(spec.get("report"), dict) else {}
    return Calibration(scale=scale, shift=shift, detector_version=version, rows=counts[0], hallucinated=counts[1],
                       report=report)


@dataclass(frozen=True)
class DetectorChoice:
    """What ``[detector]`` says: ``kind`` ``"support"`` (with ``calibration``, a file, or None) or ``"nli"`` (with
    ``model``, a folder, and ``options`` for :class:`workbench.eval.nli.NLIDetector`).

    Examples
    --------
    >>> DetectorChoice()  # no [detector] section: the offline detector, uncalibrated
    DetectorChoice(kind='support', calibration=None, model=None, options={})
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text('[detector]\\nmodel = "models/nli"\\nbatch_size = 8\\n')
    >>> c = detector_choice(p)
    >>> c.kind, c.model == p.parent / "models" / "nli", c.options
    ('nli', True, {'batch_size': 8})
    """

    kind: str = DETECTOR_NAME
    calibration: Path | None = None
    model: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)


def detector_choice(config: Any = None) -> DetectorChoice:
    """The ``[detector]`` section of ``workbench.toml``, checked.

    Parameters
    ----------
    config : path, Config, Settings or None
        As :func:`workbench.config.load_config` takes it (None: ``$WORKBENCH_CONFIG``, else ``./workbench.toml``).

    Raises
    ------
    ConfigError
        An unknown key, a value of the wrong type, or both ``model`` and ``calibration`` (the model tier has its own
        calibration, in its folder).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text('[detector]\\ncalibration = "cal.json"\\n')
    >>> c = detector_choice(p)
    >>> c.kind, c.calibration == p.parent / "cal.json"
    ('support', True)
    >>> _ = p.write_text('[detector]\\nmodle = "models/nli"\\n')
    >>> detector_choice(p)
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: workbench.toml [detector]: unknown key 'modle'; expected model, calibration, ...
    """
    from workbench.config import load_config

    cfg = load_config(config)
    sec = cfg.section("detector")
    unknown = [k for k in sec if k not in _KEYS]
    if unknown:
        raise ConfigError(f"{cfg.where('detector')}: unknown key {unknown[0]!r}; expected {', '.join(_KEYS)}")
    base = cfg.path.parent if cfg.path else Path.cwd()

    def path(key: str, what: str) -> Path | None:
        v = sec.get(key)
        if v is None:
            return None
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(f"{cfg.where('detector')}: {key} must be a {what} path (string), got {v!r}")
        p = Path(v.strip()).expanduser()
        return p if p.is_absolute() else base / p

    model, calibration = path("model", "folder"), path("calibration", "file")
    if model is not None and calibration is not None:
        raise ConfigError(f"{cfg.where('detector')}: model and calibration exclude each other: calibration applies to "
                          "the offline detector; the model tier's calibration is calibration.json in its folder "
                          "(`workbench hallucination calibrate LABELLED.jsonl --detector nli:PATH`)")
    options = {}
    for key in ("batch_size", "max_length"):
        if key in sec:
            v = sec[key]
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ConfigError(f"{cfg.where('detector')}: {key} must be a positive integer, got {v!r}")
            if model is None:
                raise ConfigError(f"{cfg.where('detector')}: {key} applies to the model tier; set model = \"PATH\"")
            options[key] = v
    if model is not None:
        return DetectorChoice("nli", model=model, options=options)
    return DetectorChoice(DETECTOR_NAME, calibration=calibration)


def model_file(folder: Path) -> Path:
    """model.onnx in ``folder``, else in its ``onnx`` sub-folder (exported model repositories); the first name when
    neither exists, for the error.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "onnx").mkdir(); _ = (d / "onnx" / "model.onnx").write_bytes(b"x")
    >>> model_file(d).relative_to(d).as_posix()
    'onnx/model.onnx'
    """
    for f in (folder / "model.onnx", folder / "onnx" / "model.onnx"):
        if f.is_file():
            return f
    return folder / "model.onnx"


_HASHES: dict[tuple, str] = {}


def model_hash(folder: Path) -> str:
    """12 hex digits of the SHA-1 of a model folder's model, tokenizer and config files (in that order, those that
    exist): what decides its scores. Computed once per state of the files (their paths, sizes and modification times).

    >>> import hashlib, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "model.onnx").write_bytes(b"graph"); _ = (d / "tokenizer.json").write_bytes(b"{}")
    >>> model_hash(d) == hashlib.sha1(b"graph{}").hexdigest()[:12]
    True
    """
    files = [model_file(folder), folder / "tokenizer.json", folder / "config.json"]
    present = [f for f in files if f.is_file()]
    key = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in present)
    if key not in _HASHES:
        digest = hashlib.sha1()
        for f in present:
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        _HASHES[key] = digest.hexdigest()[:12]
    return _HASHES[key]


#: The model tier's calibration, in its folder (written by ``workbench hallucination calibrate --detector nli:PATH``).
MODEL_CALIBRATION = "calibration.json"


def model_calibration(folder: Path) -> dict | None:
    """The model tier's calibration in ``folder`` (how the lexical log-odds and the model's worst-claim non-support
    combine: ``coef`` of two non-negative weights, ``intercept``), checked; None when the folder has none.

    Raises
    ------
    ConfigError
        Not JSON, a weight missing or negative, or fitted with another version of the offline detector (whose
        log-odds it weighs): the message names the file and says to fit it again.

    Examples
    --------
    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> model_calibration(d) is None
    True
    >>> _ = (d / "calibration.json").write_text(json.dumps({"coef": [1.0], "intercept": 0.0}))
    >>> model_calibration(d)
    Traceback (most recent call last):
    ...
    workbench.errors.ConfigError: ...calibration.json: 'coef' must be two non-negative numbers (lexical, model), got [1.0]
    """
    path = folder / MODEL_CALIBRATION
    if not path.is_file():
        return None
    spec = _json_file(path)
    if not isinstance(spec, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(spec).__name__}")
    coef, intercept = spec.get("coef"), spec.get("intercept")
    if not (isinstance(coef, list) and len(coef) == 2 and all(_finite(c) and c >= 0 for c in coef)):
        raise ConfigError(f"{path}: 'coef' must be two non-negative numbers (lexical, model), got {coef!r}")
    if not _finite(intercept):
        raise ConfigError(f"{path}: 'intercept' must be a finite number, got {intercept!r}")
    version = spec.get("detector_version", DETECTOR_VERSION)
    if version != DETECTOR_VERSION:
        raise ConfigError(f"{path}: fitted with detector {DETECTOR_NAME} {version}, this is {DETECTOR_VERSION}: fit it "
                          f"again (`workbench hallucination calibrate LABELLED.jsonl --detector nli:{folder}`)")
    return spec


def model_version(hashed: str, calibration: Mapping[str, Any] | None) -> str:
    """The model tier's version: the offline detector's, the model folder's hash (``hashed``, :func:`model_hash`) and
    its calibration (``uncal``, or ``cal.`` and 8 hex digits of a hash of its weights: a new calibration scores again).

    >>> model_version("3f2a0c9d11e1", None) == DETECTOR_VERSION + "+3f2a0c9d11e1.uncal"
    True
    >>> model_version("3f2a0c9d11e1", {"coef": [1, 2], "intercept": 0}).split("+")[1][:17]
    '3f2a0c9d11e1.cal.'
    """
    if not calibration:
        tag = "uncal"
    else:
        tag = _calibration_tag([[float(c) for c in calibration["coef"]], float(calibration["intercept"])])
    return f"{DETECTOR_VERSION}+{hashed}.{tag}"


def detector_identity(config: Any = None) -> tuple[str, str]:
    """The name and version under which the configured detector writes its scores (``evals.evaluator`` and
    ``evaluator_version``), without loading it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "workbench.toml"
    >>> _ = p.write_text("[budget.chat]\\nmonthly_usd = 100\\n")
    >>> detector_identity(p) == (DETECTOR_NAME, DETECTOR_VERSION)     # no [detector]: the offline detector as shipped
    True
    """
    choice = detector_choice(config)
    if choice.kind == "nli":
        if not choice.model.is_dir():
            raise MissingFileError(f"nli: model folder {choice.model} does not exist")
        return "nli", model_version(model_hash(choice.model), model_calibration(choice.model))
    if choice.calibration is not None:
        return DETECTOR_NAME, read_calibration(choice.calibration).check(str(choice.calibration)).version
    return DETECTOR_NAME, DETECTOR_VERSION
