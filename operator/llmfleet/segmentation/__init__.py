"""Security roles per placement mode, and the Kubernetes objects that realize each role."""
