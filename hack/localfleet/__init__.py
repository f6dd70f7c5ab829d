"""Local federated test clusters for llmfleet: a cloud hub and an on-prem member."""
