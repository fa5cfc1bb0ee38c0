"""Import every modality so that its methods are registered for recipes."""

from invlab.runs import image  # noqa: F401
from invlab.runs import timeseries  # noqa: F401
