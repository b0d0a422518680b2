"""The config contract: schema defaults and one-line errors naming the key."""

import copy

import pytest
import yaml

from evosweep.config import SCHEMA_PATH, validate
from evosweep.errors import ConfigError
from helpers.workflow_runner import REPO

MINIMAL = {"datasets": {"iris": {"source": "sklearn:iris"}}}


def checked(config):
    return validate(copy.deepcopy(config))


def test_default_config_is_valid_and_gets_defaults():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config)
    assert config["seed"] == 42
    assert config["datasets"]["blobs"]["stratify"] is None  # filled default: by class when labelled
    assert SCHEMA_PATH.is_file()


def test_minimal_config_is_filled_with_defaults():
    config = checked(MINIMAL)
    assert config["seed"] == 42
    iris = config["datasets"]["iris"]
    assert iris["test_size"] == 0.25 and iris["stratify"] is None
    assert config["search"] == {"engines": None, "models": {}}
    assert config["evolve"]["problems"] == {}
    assert config["report"]["scaling"] == [1, 2]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"colour": "blue"}, "(top level): unknown key 'colour'"),
        ({"seed": "x"}, "seed: expected integer"),
        ({"seed": -1}, "seed: -1 is out of range"),
        (
            {"datasets": {"iris": {"source": "sklearn:iris", "tset_size": 0.2}}},
            "unknown key 'tset_size'",
        ),
        (
            {"datasets": {"iris": {"source": "sklearn:iris", "test_size": 0}}},
            "datasets.iris.test_size: 0 is out of range; expected a value > 0",
        ),
        (
            {"datasets": {"iris": {"source": "sklearn:iris", "test_size": -0.2}}},
            "datasets.iris.test_size: -0.2 is out of range",
        ),
        (
            {"datasets": {"iris": {"source": "sklearn:iris", "test_size": 1}}},
            "datasets.iris.test_size: 1 is out of range; expected a value < 1",
        ),
        (
            {"datasets": {"iris": {"source": "sklearn:iris", "test_size": "big"}}},
            "datasets.iris.test_size: expected number",
        ),
        (
            {"datasets": {"iris": {"source": "sklearn:irises"}}},
            "datasets.iris.source: 'sklearn:irises' is not valid; expected sklearn:digits",
        ),
        (
            {"datasets": {"b": {"source": "blobs", "centers": 0}}},
            "datasets.b.centers: 0 is out of range; expected a value >= 1",
        ),
        (
            {"datasets": {"f": {"source": "csv:x.csv"}}},
            "datasets.f.target: a csv source needs 'target'",
        ),
        ({"datasets": {}}, "datasets:"),
        ({"datasets": {"1bad": {"source": "blobs"}}}, "not a valid name"),
    ],
)
def test_bad_config_gives_one_line_naming_the_key(change, expected):
    config = {**copy.deepcopy(MINIMAL), **change}
    with pytest.raises(ConfigError) as raised:
        checked(config)
    message = str(raised.value)
    assert expected in message
    assert "\n" not in message
    assert message.startswith("config error at ")


def test_model_must_name_a_defined_dataset():
    config = copy.deepcopy(MINIMAL)
    config["search"] = {
        "models": {"m": {"dataset": "nope", "estimator": "sklearn.svm.SVC", "space": {"C": [1]}}}
    }
    with pytest.raises(ConfigError, match=r"search.models.m.dataset: unknown dataset 'nope'"):
        checked(config)
