"""Layer 8, run: a scenario's steps run in a testbed, measured until settled, events made to
happen. Imports the layers below; above it only the faces (cli, pytest_plugin, preflight)."""
