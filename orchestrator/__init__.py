"""bmad-orchestrator runtime."""
