"""hsigen pipeline stages, importable without the CLI.

Each stage subpackage exposes ``run(inputs..., config) -> Artifact``.
"""

__version__ = "0.1.0"
