"""Faust agents: thin wiring from Kafka topics to the analytics core and the sinks."""
