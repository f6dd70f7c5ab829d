"""kopf handlers: the only modules that import kopf. Importing this package registers them."""

from llmfleet.handlers import llmdeployment, operator

__all__ = ["llmdeployment", "operator"]
