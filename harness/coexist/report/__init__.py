"""Layer 7, report: what a run measured and how it is judged: results, verdicts, explanations, the
matrix. Imports the layers below."""
