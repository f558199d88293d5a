"""Layer 3, net: the simulated internet and the probes that measure what reaches it. Imports the
layers below."""
