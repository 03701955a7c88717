"""The trainers; one module each, named as in Agent-NN."""
