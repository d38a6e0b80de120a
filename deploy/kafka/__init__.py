"""Local Apache Kafka clusters (a 3-node vessel and a 1-node shore) for runs and tests.

Run ``python -m deploy.kafka --help``; the library API is in :mod:`deploy.kafka.cluster`.
"""
