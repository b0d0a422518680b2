# Evolution stage (issue 4) -- rules arrive with the evolution stage.
def evolve_outputs():
    return []
