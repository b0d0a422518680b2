"""The one search-space syntax shared by every search strategy.

A space maps a parameter name to a *dimension*:

=========================================  ======================================================
``[v1, v2, ...]``                          categorical values (any strategy)
``{logspace: [start, stop, num]}``         ``num`` values ``10**start .. 10**stop`` (any strategy)
``{linspace: [start, stop, num]}``         ``num`` evenly spaced values (any strategy)
``{range: [start, stop, step]}``           integers ``start, start+step, ... < stop`` (any strategy)
``{loguniform: [low, high]}``              continuous, log-uniform, ``0 < low < high`` (not grid)
``{uniform: [low, high]}``                 continuous, uniform, ``low < high`` (not grid)
``{randint: [low, high]}``                 integers ``low <= k < high`` (not grid)
=========================================  ======================================================

Public API (stable; the evolution stage imports it):

- :func:`parse` -- check a space, return ``{name: Dimension}``; bad input raises ``ConfigError``
  with one line naming the key path.
- :func:`grid` -- ``{name: [values]}`` for ``GridSearchCV``; a distribution is an error.
- :func:`distributions` -- ``{name: list | scipy distribution}`` for ``RandomizedSearchCV`` and
  ``HalvingRandomSearchCV`` (they seed the draws through their ``random_state``).
- :func:`genes` -- one :class:`Gene` per parameter for a genetic algorithm, with
  :func:`encode` / :func:`decode` between parameter dicts and gene vectors.
- :func:`grid_size` -- number of grid candidates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from evosweep.errors import ConfigError

GRID_FORMS = ("logspace", "linspace", "range")
DISTRIBUTION_FORMS = ("loguniform", "uniform", "randint")
FORMS = GRID_FORMS + DISTRIBUTION_FORMS


@dataclass(frozen=True)
class Dimension:
    """One checked dimension: `form` is 'list' or one of FORMS, `args` its numbers."""

    name: str
    form: str
    args: tuple

    @property
    def is_distribution(self) -> bool:
        return self.form in DISTRIBUTION_FORMS

    def values(self) -> list:
        """The finite list of values (lists and grid forms only)."""
        import numpy as np

        if self.form == "list":
            return list(self.args)
        if self.form == "logspace":
            start, stop, num = self.args
            return [float(v) for v in np.logspace(start, stop, int(num))]
        if self.form == "linspace":
            start, stop, num = self.args
            return [float(v) for v in np.linspace(start, stop, int(num))]
        if self.form == "range":
            return list(range(*(int(a) for a in self.args)))
        raise ValueError(f"{self.form} is a distribution, it has no finite list of values")


@dataclass(frozen=True)
class Gene:
    """How a genetic algorithm sees one parameter.

    kind 'choice': the gene is an integer index into `choices` (lists and grid forms).
    kind 'int':    the gene is an integer in [low, high] (randint; both bounds inclusive).
    kind 'float':  the gene is a float in [low, high]; when `log` is true the gene is
                   log10 of the value (loguniform), so mutation steps are relative.
    """

    name: str
    kind: str
    low: float
    high: float
    log: bool = False
    choices: tuple = ()


def _fail(where: str, message: str):
    raise ConfigError(where, message)


def _dimension(name: str, spec: Any, where: str) -> Dimension:
    if isinstance(spec, list | tuple):
        if not spec:
            _fail(where, "an empty list has no values to try")
        return Dimension(name, "list", tuple(spec))
    if not isinstance(spec, dict) or len(spec) != 1:
        _fail(
            where,
            f"{spec!r} is not a dimension; expected a list or one of {{{'|'.join(FORMS)}: [...]}}",
        )
    (form, args), *_ = spec.items()
    if form not in FORMS:
        _fail(where, f"unknown form {form!r}; expected a list or one of {', '.join(FORMS)}")
    arity = 3 if form in GRID_FORMS else 2
    shape = "[start, stop, num]" if form in ("logspace", "linspace") else "[start, stop, step]"
    shape = shape if arity == 3 else "[low, high]"
    if (
        not isinstance(args, list | tuple)
        or len(args) != arity
        or not all(isinstance(a, int | float) and not isinstance(a, bool) for a in args)
    ):
        _fail(where, f"{form} needs {arity} numbers {shape}, got {args!r}")
    if any(not math.isfinite(a) for a in args):
        _fail(where, f"{form} needs finite numbers, got {args!r}")
    if form in ("logspace", "linspace"):
        if args[2] != int(args[2]) or args[2] < 1:
            _fail(where, f"{form} num must be an integer >= 1, got {args[2]!r}")
    elif form == "range":
        if any(a != int(a) for a in args):
            _fail(where, f"range needs integers [start, stop, step], got {args!r}")
        if args[2] == 0 or not range(*(int(a) for a in args)):
            _fail(where, f"range {list(args)!r} is empty (stop is exclusive; step must not be 0)")
    else:
        low, high = args
        if low >= high:
            _fail(where, f"{form} needs low < high, got {list(args)!r}")
        if form == "loguniform" and low <= 0:
            _fail(where, f"loguniform needs 0 < low, got {list(args)!r}")
        if form == "randint" and (low != int(low) or high != int(high)):
            _fail(where, f"randint needs integers [low, high), got {list(args)!r}")
    return Dimension(name, form, tuple(args))


def parse(space: Any, where: str = "space") -> dict[str, Dimension]:
    """Check every dimension of `space`; `where` is the key path used in error messages."""
    if not isinstance(space, dict) or not space:
        _fail(where, "the space must be a non-empty mapping of parameter name to dimension")
    return {name: _dimension(name, spec, f"{where}.{name}") for name, spec in space.items()}


def grid(space: dict, where: str = "space") -> dict[str, list]:
    """`{name: values}` for GridSearchCV; a distribution cannot be enumerated, so it is an error."""
    result = {}
    for name, dim in parse(space, where).items():
        if dim.is_distribution:
            _fail(
                f"{where}.{name}",
                f"{{{dim.form}: {list(dim.args)}}} is a distribution; a grid needs a list, "
                f"logspace, linspace or range",
            )
        result[name] = dim.values()
    return result


def grid_size(space: dict, where: str = "space") -> int:
    return math.prod(len(values) for values in grid(space, where).values())


def distributions(space: dict, where: str = "space") -> dict[str, Any]:
    """`{name: list | frozen scipy distribution}` for random and halving searches."""
    from scipy import stats

    result = {}
    for name, dim in parse(space, where).items():
        if dim.form == "loguniform":
            result[name] = stats.loguniform(*dim.args)
        elif dim.form == "uniform":
            low, high = dim.args
            result[name] = stats.uniform(loc=low, scale=high - low)
        elif dim.form == "randint":
            result[name] = stats.randint(int(dim.args[0]), int(dim.args[1]))
        else:
            result[name] = dim.values()
    return result


def genes(space: dict, where: str = "space") -> list[Gene]:
    """One Gene per parameter, in the space's order."""
    result = []
    for name, dim in parse(space, where).items():
        if dim.form == "loguniform":
            low, high = dim.args
            result.append(Gene(name, "float", math.log10(low), math.log10(high), log=True))
        elif dim.form == "uniform":
            result.append(Gene(name, "float", float(dim.args[0]), float(dim.args[1])))
        elif dim.form == "randint":
            result.append(Gene(name, "int", int(dim.args[0]), int(dim.args[1]) - 1))
        else:
            choices = tuple(dim.values())
            result.append(Gene(name, "choice", 0, len(choices) - 1, choices=choices))
    return result


def decode(gene_list: list[Gene], vector) -> dict[str, Any]:
    """Gene vector -> parameter dict; out-of-bounds genes are clipped, integer genes rounded."""
    params = {}
    for gene, raw in zip(gene_list, vector, strict=True):
        value = min(max(float(raw), gene.low), gene.high)
        if gene.kind == "choice":
            params[gene.name] = gene.choices[int(round(value))]
        elif gene.kind == "int":
            params[gene.name] = int(round(value))
        else:
            params[gene.name] = 10.0**value if gene.log else value
    return params


def encode(gene_list: list[Gene], params: dict[str, Any]) -> list[float | int]:
    """Parameter dict -> gene vector (inverse of decode for values inside the space)."""
    vector: list[float | int] = []
    for gene in gene_list:
        value = params[gene.name]
        if gene.kind == "choice":
            matches = [i for i, choice in enumerate(gene.choices) if choice == value]
            if not matches:
                # logspace values round-trip through floats: take the nearest choice
                matches = [
                    min(
                        range(len(gene.choices)),
                        key=lambda i: abs(float(gene.choices[i]) - float(value)),
                    )
                ]
            vector.append(matches[0])
        elif gene.kind == "int":
            vector.append(int(value))
        else:
            vector.append(math.log10(value) if gene.log else float(value))
    return vector
