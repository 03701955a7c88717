"""The `agentnn` command."""
