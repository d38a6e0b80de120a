"""How Coldwake is run outside Python.

`kafka/` starts local Kafka clusters from Maven-fetched jars. May import `flows.contract` only.
"""
