"""The one error hierarchy of hsigen.

Stages raise these; the CLI turns them into exit codes in one place
(``hsigen_cli/errors.py``). A message always names the fix.
"""


class HsigenError(Exception):
    """Base class: a problem the user can fix (exit code 1)."""


class InputError(HsigenError):
    """A missing, unreadable or malformed input file."""


class ConfigError(HsigenError):
    """An option or config value that cannot work."""


class SpectralError(HsigenError):
    """Wavelengths missing, inconsistent, or outside the target grid."""


class ArtifactError(HsigenError):
    """An artifact directory that is missing, incomplete, corrupt or of the wrong kind."""


class OutputExistsError(ArtifactError):
    """The output directory exists and ``--overwrite`` was not given."""
