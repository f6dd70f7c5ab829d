"""Pure builders: typed spec + placement decision -> the Kubernetes objects to apply."""
