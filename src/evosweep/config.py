"""Configuration: JSON-Schema validation with defaults, then cross-checks, as one-line errors."""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

from evosweep.errors import ConfigError

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

# jsonschema and yaml are imported where used: every Snakemake start parses the Snakefile, and
# a config that already passed is taken from the cache (checked) without them.

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"


@functools.cache
def _default_filling_validator():
    """A validator that fills `default` values while it validates (jsonschema FAQ recipe)."""
    from jsonschema import Draft202012Validator, validators

    validator_class = Draft202012Validator
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def load_schema(path: str | Path = SCHEMA_PATH) -> dict:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available
    with open(path) as handle:
        return yaml.load(handle, Loader=loader)


def model_defaults() -> dict:
    """The schema's defaults of a `search.models` entry, nested settings filled too."""
    return copy.deepcopy(_model_defaults())


@functools.cache
def _model_defaults() -> dict:
    return _defaults(load_schema()["$defs"]["model"])


def _defaults(schema: dict) -> dict:
    result = {}
    for name, subschema in schema.get("properties", {}).items():
        if "default" in subschema:
            default = subschema["default"]
            if isinstance(default, dict) and "properties" in subschema:
                default = {**_defaults(subschema), **default}
            result[name] = default
    return result


def key_path(path) -> str:
    return ".".join(str(part) for part in path) or "(top level)"


def _shown(value) -> str:
    """A value as the YAML config spells it: null, true, false, 'text', 1.5."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)


def _describe(error: ValidationError) -> tuple[str, str]:
    """Turn a jsonschema error into (where, what was expected)."""
    where = key_path(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        unexpected = sorted(set(error.instance) - set(allowed))
        hint = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return where, f"unknown key {', '.join(map(repr, unexpected))}{hint}"
    if error.validator == "required":
        return where, f"missing required key ({error.message})"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return where, f"expected {expected}, got {_shown(error.instance)}"
    if error.validator == "pattern" and "description" in schema:
        return where, f"{_shown(error.instance)} is not valid; expected {schema['description']}"
    if error.validator == "pattern":
        return where, f"{error.instance!r} is not a valid name (letters, digits, _)"
    if error.validator == "enum":
        options = ", ".join(map(_shown, error.validator_value))
        return where, f"{_shown(error.instance)} is not one of {options}"
    if error.validator == "oneOf" and "description" in schema:
        return where, f"{_shown(error.instance)} is not valid; expected {schema['description']}"
    if error.validator in {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}:
        bounds = {
            "minimum": ">=",
            "maximum": "<=",
            "exclusiveMinimum": ">",
            "exclusiveMaximum": "<",
        }
        op = bounds[error.validator]
        return (
            where,
            f"{_shown(error.instance)} is out of range; expected a value {op} {error.validator_value}",
        )
    return where, f"{error.message}"


def validate(config: dict, schema: dict | None = None) -> dict:
    """Validate `config` in place against the schema, filling defaults; raise ConfigError."""
    schema = schema if schema is not None else load_schema()
    if not isinstance(config, dict):
        raise ConfigError("(top level)", "the configuration must be a mapping")
    from jsonschema.exceptions import best_match

    validator = _default_filling_validator()(schema)
    error = best_match(validator.iter_errors(config), key=_relevance)
    if error is not None:
        raise ConfigError(*_describe(error))
    check_references(config)
    return config


def _relevance(error: ValidationError):
    # Prefer the deepest error; oneOf/anyOf wrappers are less specific than their leaves.
    return (len(error.absolute_path), error.validator not in {"oneOf", "anyOf"})


def check_references(config: dict) -> None:
    """Cross-references the schema cannot express."""
    datasets = config["datasets"]
    for name, spec in datasets.items():
        source = spec["source"]
        if (
            source.startswith(("csv:", "parquet:"))
            and not spec["unsupervised"]
            and "target" not in spec
        ):
            raise ConfigError(
                f"datasets.{name}.target",
                f"a {source.split(':')[0]} source needs "
                f"'target' naming its label column (or unsupervised: true)",
            )
    models = config["search"]["models"]
    for name, spec in models.items():
        if spec["dataset"] not in datasets:
            raise ConfigError(
                f"search.models.{name}.dataset",
                f"unknown dataset {spec['dataset']!r}; "
                f"defined datasets: {', '.join(sorted(datasets))}",
            )
    check_scaling(config)
    problems = config["evolve"]["problems"]
    for name, spec in problems.items():
        model = spec["model"]
        if spec["objective"] == "feature_selection" and model is None:
            raise ConfigError(
                f"evolve.problems.{name}.model",
                "feature selection needs 'model', "
                "the search model whose best parameters score each feature subset",
            )
        if model is not None and model not in models:
            raise ConfigError(
                f"evolve.problems.{name}.model",
                f"unknown search model {model!r}; "
                f"defined models: {', '.join(sorted(models)) or 'none'}",
            )


def check_scaling(config: dict) -> None:
    report = config["report"]
    for key, section, kind in (
        ("scaling_model", ("search", "models"), "search model"),
        ("scaling_problem", ("evolve", "problems"), "evolution problem"),
    ):
        name = report[key]
        defined = config[section[0]][section[1]]
        if name is not None and name not in defined:
            raise ConfigError(
                f"report.{key}",
                f"unknown {kind} {name!r}; defined: {', '.join(sorted(defined)) or 'none'}",
            )


def with_fix_hint(error: Exception, config_files) -> str:
    """The error's line; a config error also names the config file(s) in use."""
    if not isinstance(error, ConfigError):
        return str(error)
    files = " and ".join(str(f) for f in config_files) or "the config passed with --config"
    return f"{error} (fix {files})"


def _fingerprint(config: dict, files) -> str:
    """Config + user files + evosweep's own code: when any changes, the checks run again."""
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode())
    package = Path(__file__).resolve().parent
    for path in sorted(package.glob("**/*.py")) + [Path(f) for f in files]:
        try:
            stat = path.stat()
            digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        except OSError:
            digest.update(f"{path}:missing".encode())
    return digest.hexdigest()


def checked(config: dict, checks=(), user_files=None, cache_dir=".snakemake/evosweep") -> dict:
    """Validate `config` in place (filling defaults) and run the expensive `checks` (reading
    user files, importing estimators), once per change of the config, the files
    `user_files(config)` names, the schema or evosweep's code.

    Snakemake parses the Snakefile on every start (a no-op dry run, every cluster job); later
    starts take the filled config from the cache, without jsonschema or scikit-learn.
    """
    import pickle

    try:
        files = list(user_files(config)) if user_files else []
    except Exception:  # noqa: BLE001 - a malformed config is reported by validate() below
        files = []
    entry = Path(cache_dir) / f"config-{_fingerprint(config, [SCHEMA_PATH, *files])}.pickle"
    try:
        filled = pickle.loads(entry.read_bytes())
    except Exception:  # noqa: BLE001 - missing or damaged: validate and check again
        filled = None
    if isinstance(filled, dict):
        config.clear()
        config.update(filled)
        return config
    validate(config)
    for check in checks:
        check(config)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        partial = entry.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(config))
        os.replace(partial, entry)  # atomic: concurrent cluster jobs never read half a file
    except OSError:
        pass  # a read-only working directory only costs the checks
    return config
