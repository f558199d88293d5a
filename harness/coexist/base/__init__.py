"""Layer 0, base: the nested log, the one retry helper, orderly interrupts, the command verbs and
their two error families, and the one error a user's field gets. Imports nothing of coexist."""
