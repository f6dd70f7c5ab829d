"""Files shipped into gateway pods beside the LiteLLM config (read as text by the renderer)."""
