# Search stage (issue 3) -- rules arrive with the search stage.
def search_outputs():
    return []
