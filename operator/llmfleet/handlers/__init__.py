"""kopf handlers: the only modules that import kopf. Importing this package registers them."""

from llmfleet.handlers import chatendpoint, llmdeployment, operator

__all__ = ["chatendpoint", "llmdeployment", "operator"]
