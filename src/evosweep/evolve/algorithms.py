"""CMA-ES, a genetic algorithm and NSGA-II as resumable generation steppers.

Every random draw happens here, in the master (`random` for DEAP's operators, numpy's global
generator for CMA-ES); workers only evaluate. So results do not depend on the worker count.
"""

from __future__ import annotations

import random
from operator import attrgetter

import numpy as np
from deap import base, cma, creator, tools
from deap.algorithms import varAnd

from evosweep.evolve.problems import Objective


def individual_class(weights: tuple[float, ...]):
    """creator classes per fitness signature, created once (pickled checkpoints refer to them)."""
    tag = "_".join(("p" if w > 0 else "m") + str(abs(w)).replace(".", "") for w in weights)
    fitness_name, individual_name = f"Fitness_{tag}", f"Individual_{tag}"
    if not hasattr(creator, fitness_name):
        creator.create(fitness_name, base.Fitness, weights=weights)
    if not hasattr(creator, individual_name):
        creator.create(individual_name, list, fitness=getattr(creator, fitness_name))
    return getattr(creator, individual_name)


# The signatures of the built-in objectives exist from import on, as DEAP recommends.
for _weights in ((-1.0,), (1.0,), (1.0, -1.0)):
    individual_class(_weights)


class Algorithm:
    """One run: `initialize()` then `step()` once per generation; state pickles for resume."""

    def __init__(self, problem: dict, objective: Objective, evaluate):
        self.problem = problem
        self.objective = objective
        self.evaluate = evaluate  # individuals -> (evaluations, cache hits); sets fitness
        self.Individual = individual_class(objective.weights)
        self.multi_objective = len(objective.weights) > 1
        self.hall = tools.ParetoFront() if self.multi_objective else tools.HallOfFame(1)
        self.population: list = []

    def initialize(self) -> tuple[list, int, int]:
        """Generation 0; returns (population to record, evaluations, cache hits)."""
        raise NotImplementedError

    def step(self) -> tuple[list, int, int]:
        raise NotImplementedError

    def state(self) -> dict:
        return {"population": self.population, "hall": self.hall}

    def restore(self, state: dict) -> None:
        self.population = state["population"]
        self.hall = state["hall"]

    def _evaluated(self, individuals) -> tuple[int, int]:
        pending = [ind for ind in individuals if not ind.fitness.valid]
        return self.evaluate(pending)


class CmaEs(Algorithm):
    """DEAP's CMA-ES strategy with the generate/update loop of the DEAP example."""

    def initialize(self):
        size = self.objective.size
        self.strategy = cma.Strategy(
            centroid=[self.problem["centroid"]] * size,
            sigma=self.problem["sigma"],
            **({"lambda_": self.problem["lambda"]} if self.problem["lambda"] else {}),
        )
        return [], 0, 0  # CMA-ES has no generation 0: each generation samples afresh

    def step(self):
        self.population = self.strategy.generate(self.Individual)
        evaluations, hits = self._evaluated(self.population)
        self.strategy.update(self.population)
        self.hall.update(self.population)
        return self.population, evaluations, hits

    def state(self):
        return {**super().state(), "strategy": self.strategy}

    def restore(self, state):
        super().restore(state)
        self.strategy = state["strategy"]


class _Variation(Algorithm):
    """Genome initialisation, crossover and mutation for float, bit and search-space genomes."""

    def new_genome(self) -> list:
        kind, size = self.objective.genome, self.objective.size
        if kind == "bits":
            return [random.randint(0, 1) for _ in range(size)]
        if kind == "genes":
            return [
                random.uniform(g.low, g.high)
                if g.kind == "float"
                else random.randint(g.low, g.high)
                for g in self.objective.genes
            ]
        centre, spread = self.problem["centroid"], self.problem["sigma"]
        return [random.uniform(centre - spread, centre + spread) for _ in range(size)]

    def gene_probability(self) -> float:
        return self.problem["gene_mutation"] or 1.0 / self.objective.size

    def mate(self, first, second) -> tuple:
        if self.objective.genome == "float":
            return tools.cxBlend(first, second, alpha=0.5)
        return tools.cxUniform(first, second, indpb=0.5)

    def mutate(self, individual) -> tuple:
        probability = self.gene_probability()
        kind = self.objective.genome
        if kind == "bits":
            return tools.mutFlipBit(individual, indpb=probability)
        if kind == "float":
            step = 0.1 * self.problem["sigma"]
            return tools.mutGaussian(individual, mu=0.0, sigma=step, indpb=probability)
        for index, gene in enumerate(self.objective.genes):
            if random.random() < probability:
                spread = gene.high - gene.low
                value = individual[index] + random.gauss(0.0, max(0.2 * spread, 1e-12))
                if gene.kind != "float":
                    # Integer genes move by at least one step so a mutation is never a no-op.
                    moved = int(round(value))
                    if moved == individual[index]:
                        moved += random.choice((-1, 1))
                    value = moved
                individual[index] = min(max(value, gene.low), gene.high)
        return (individual,)

    def vary(self, parents) -> list:
        """DEAP's varAnd: mate neighbours with p=crossover, mutate each with p=mutation. Its
        clones are fresh individuals (no fitness), so every child is evaluated or found in the
        cache, as the logbook counts them."""
        toolbox = base.Toolbox()
        toolbox.register("clone", lambda parent: self.Individual(list(parent)))
        toolbox.register("mate", self.mate)
        toolbox.register("mutate", self.mutate)
        return varAnd(parents, toolbox, self.problem["crossover"], self.problem["mutation"])

    def _initial_population(self, size: int):
        self.population = [self.Individual(self.new_genome()) for _ in range(size)]
        evaluations, hits = self._evaluated(self.population)
        self.hall.update(self.population)
        return evaluations, hits


class GeneticAlgorithm(_Variation):
    """eaSimple with tournament selection, plus one elite so the best is never lost."""

    def initialize(self):
        evaluations, hits = self._initial_population(self.problem["population"])
        return self.population, evaluations, hits

    def step(self):
        parents = tools.selTournament(
            self.population, len(self.population), tournsize=self.problem["tournament"]
        )
        offspring = self.vary(parents)
        evaluations, hits = self._evaluated(offspring)
        elite = max(self.population, key=attrgetter("fitness"))
        offspring[-1] = self.Individual(list(elite))
        offspring[-1].fitness.values = elite.fitness.values
        self.population = offspring
        self.hall.update(self.population)
        return self.population, evaluations, hits


class Nsga2(_Variation):
    """NSGA-II as in DEAP's example: DCD tournaments, variation, (mu + lambda) selNSGA2."""

    def initialize(self):
        evaluations, hits = self._initial_population(self.problem["population"])
        # Assigns the crowding distance that selTournamentDCD needs.
        self.population = tools.selNSGA2(self.population, len(self.population))
        return self.population, evaluations, hits

    def step(self):
        parents = tools.selTournamentDCD(self.population, len(self.population))
        offspring = self.vary(parents)
        evaluations, hits = self._evaluated(offspring)
        self.population = tools.selNSGA2(self.population + offspring, len(self.population))
        self.hall.update(self.population)
        return self.population, evaluations, hits


def create(problem: dict, objective: Objective, evaluate) -> Algorithm:
    classes = {"cma-es": CmaEs, "ga": GeneticAlgorithm, "nsga2": Nsga2}
    return classes[problem["algorithm"]](problem, objective, evaluate)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)


def rng_state() -> dict:
    return {"random": random.getstate(), "numpy": np.random.get_state()}


def restore_rng(state: dict) -> None:
    random.setstate(state["random"])
    np.random.set_state(state["numpy"])
