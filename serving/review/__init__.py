"""Review console: queues, decisions, reports and blocklists built from reviewed verdicts."""
