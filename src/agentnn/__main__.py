"""`python -m agentnn` runs the `agentnn` command."""

from agentnn.cli.main import main

main()
