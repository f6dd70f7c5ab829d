"""llmfleet: places LLMs, chat endpoints and ML pipelines across cloud and on-premises clusters."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("llmfleet")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
