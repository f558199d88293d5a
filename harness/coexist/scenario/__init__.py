"""Layer 6, scenario: the scenario file's schema and what it names: axes, steps, expectations,
fixes. Imports the layers below."""
