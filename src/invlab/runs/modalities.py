"""Import every modality so that its methods are registered for recipes."""

from invlab.runs import image  # noqa: F401
