"""Layer 1, sandbox: marked processes, the lab's cgroups, namespace holders, and the sweep of what a
killed run left. Imports base."""
