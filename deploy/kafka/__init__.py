"""Local Apache Kafka clusters (KRaft) on 127.0.0.1, run from Apache Kafka's own jars.

Two clusters, for development and integration tests: ``vessel`` (3 nodes, replication
factor 3, ``min.insync.replicas=2``) and ``shore`` (1 node, where MirrorMaker 2 puts
the mirrored topics). Run ``python -m deploy.kafka --help``.

Everything a deployment owns lives under one directory: ``cluster.json`` (ports, broker
ids and PIDs, so another process can run ``status``/``down``), ``log4j2.properties``, and
per node ``<cluster>-<n>/`` with ``server.properties``, ``data/``, ``server.log`` (Kafka's
log) and ``console.log`` (the JVM's stdout and stderr).

Modules, each importing only those listed before it:

* :mod:`~deploy.kafka.errors`: the launcher's exceptions.
* :mod:`~deploy.kafka.logs`: reading a node's logs back for error messages.
* :mod:`~deploy.kafka.topics`: the contract's topics (partitions, retention).
* :mod:`~deploy.kafka.layout`: the plan of a deployment and its ``cluster.json``.
* :mod:`~deploy.kafka.config`: each node's ``server.properties``, the log4j2 config.
* :mod:`~deploy.kafka.processes`: starting JVMs detached, liveness, stopping, locking.
* :mod:`~deploy.kafka.jars`: fetching the jars; ``java`` command lines.
* :mod:`~deploy.kafka.admin`: waiting for brokers, creating topics.
* :mod:`~deploy.kafka.commands`: ``up``, ``down``, ``status``, ``kill_broker``,
  ``start_broker``, the library API the CLI (``__main__``) and the tests call.

Imports: of the project only :mod:`flows.contract` (topic names are spelled there
once); otherwise ``confluent_kafka`` and the standard library. Nothing here imports
Bytewax, the flows or the tests.
"""
