"""The API of llmfleet.io/v1alpha1: typed models of LLMDeployment, ChatEndpoint and MLPipeline."""

from llmfleet.api.chatendpoint import ChatEndpoint, ChatEndpointSpec
from llmfleet.api.common import API_VERSION, GROUP, VERSION
from llmfleet.api.llmdeployment import LLMDeployment, LLMDeploymentSpec
from llmfleet.api.mlpipeline import MLPipeline, MLPipelineSpec

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "ChatEndpoint",
    "ChatEndpointSpec",
    "LLMDeployment",
    "LLMDeploymentSpec",
    "MLPipeline",
    "MLPipelineSpec",
]
