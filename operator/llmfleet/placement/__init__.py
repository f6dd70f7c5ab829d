"""Where workloads run: member clusters federated by labels, and node selection inside them."""
