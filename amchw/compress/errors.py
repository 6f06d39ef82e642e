"""The error every compression method raises for a request it cannot meet (torch-free, so
the command line and the numpy solvers can name it without loading torch)."""


class PruneError(ValueError):
    """A pruning request that cannot be met (names the layer or option); `option`: the
    command-line option it is about, where one is."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option
