"""Running engines: the server lifecycle, the smoke inference and the evidence it leaves."""
