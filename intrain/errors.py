"""User-facing errors. The command line prints these as one clear message, never a traceback."""

__all__ = ["IntrainError", "ConfigError", "DataError", "SimulationFailed"]


class IntrainError(Exception):
    """An error caused by the user's input (a value, a file); its message says what to change."""


class ConfigError(IntrainError, ValueError):
    """An invalid configuration value; the message names the field and the allowed range."""


class DataError(IntrainError, ValueError):
    """A data set that cannot be read; the message names the file and the problem."""


class SimulationFailed(IntrainError, RuntimeError):
    """A simulation of the RTL could not run, or the RTL and the golden model differ; the
    message says where (for a difference: the step, phase, tensor, index and both values)."""
