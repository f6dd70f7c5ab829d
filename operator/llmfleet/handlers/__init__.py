"""kopf handlers: the only modules that import kopf. Importing this package registers them."""

from llmfleet.handlers import chatendpoint, llmdeployment, mlpipeline, operator

__all__ = ["chatendpoint", "llmdeployment", "mlpipeline", "operator"]
