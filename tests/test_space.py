"""The one search-space syntax: grids, distributions, genes, and one-line config errors."""

import math

import pytest

from evosweep import space
from evosweep.errors import ConfigError

SPACE = {
    "C": {"logspace": [-2, 2, 5]},
    "gamma": {"loguniform": [1e-4, 1e-1]},
    "depth": [None, 4, 8],
    "k": {"range": [2, 8, 2]},
    "frac": {"uniform": [0.1, 0.9]},
    "trees": {"randint": [10, 20]},
    "alpha": {"linspace": [0, 1, 3]},
}


def test_grid_values():
    grid = space.grid({"C": {"logspace": [-2, 2, 5]}, "k": {"range": [2, 8, 2]}, "d": [1, "a"]})
    assert grid["C"] == pytest.approx([0.01, 0.1, 1.0, 10.0, 100.0])
    assert grid["k"] == [2, 4, 6]
    assert grid["d"] == [1, "a"]
    assert space.grid_size({"C": {"linspace": [0, 1, 3]}, "k": [1, 2]}) == 6


def test_distributions_are_seeded_by_the_caller():
    dists = space.distributions(SPACE)
    draws = dists["gamma"].rvs(size=200, random_state=0)
    assert draws.min() >= 1e-4 and draws.max() <= 1e-1
    assert set(dists["trees"].rvs(size=200, random_state=0)) <= set(range(10, 20))
    assert list(dists["gamma"].rvs(size=3, random_state=1)) == list(
        dists["gamma"].rvs(size=3, random_state=1)
    )
    assert dists["depth"] == [None, 4, 8]


def test_genes_and_round_trip():
    genes = {gene.name: gene for gene in space.genes(SPACE)}
    assert genes["C"].kind == "choice" and len(genes["C"].choices) == 5
    assert genes["gamma"].kind == "float" and genes["gamma"].log
    assert (genes["gamma"].low, genes["gamma"].high) == pytest.approx((-4, -1))
    assert genes["frac"].kind == "float" and not genes["frac"].log
    assert (genes["trees"].kind, genes["trees"].low, genes["trees"].high) == ("int", 10, 19)
    gene_list = space.genes(SPACE)
    params = {"C": 1.0, "gamma": 1e-3, "depth": 8, "k": 4, "frac": 0.5, "trees": 12, "alpha": 0.5}
    decoded = space.decode(gene_list, space.encode(gene_list, params))
    assert decoded["gamma"] == pytest.approx(1e-3)
    assert {k: v for k, v in decoded.items() if k != "gamma"} == {
        k: v for k, v in params.items() if k != "gamma"
    }
    # Out-of-range genes are clipped into the space.
    clipped = space.decode(gene_list, [99, 5, -3, 0.4, 7, 100, 1.6])
    assert clipped["C"] == pytest.approx(100.0) and math.isclose(clipped["gamma"], 0.1)
    assert clipped["depth"] is None and clipped["trees"] == 19


@pytest.mark.parametrize(
    ("dimension", "message"),
    [
        ({"loguniform": [1e-3, 1]}, "is a distribution; a grid needs a list"),
        ({"range": [5, 2, 1]}, "is empty"),
        ([], "empty list"),
        ({"logspace": [0, 1]}, "needs 3 numbers"),
        ({"foo": [1, 2]}, "unknown form 'foo'"),
    ],
)
def test_grid_errors_name_the_key(dimension, message):
    with pytest.raises(ConfigError) as error:
        space.grid({"C": dimension}, "search.models.svc.space")
    text = str(error.value)
    assert text.startswith("config error at search.models.svc.space.C: ")
    assert message in text and "\n" not in text


@pytest.mark.parametrize(
    ("dimension", "message"),
    [
        ({"loguniform": [0, 1]}, "needs 0 < low"),
        ({"uniform": [2, 1]}, "needs low < high"),
        ({"randint": [1.5, 3]}, "needs integers"),
    ],
)
def test_distribution_errors(dimension, message):
    with pytest.raises(ConfigError, match=message):
        space.distributions({"x": dimension}, "search.models.m.space")
