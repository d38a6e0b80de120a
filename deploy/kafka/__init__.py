"""Local Apache Kafka clusters (KRaft) on 127.0.0.1, run from Apache Kafka's own jars.

Two shapes, for development and integration tests (``python -m deploy.kafka --help``):

* ``up``: ``vessel`` (3 nodes, replication factor 3, ``min.insync.replicas=2``) and
  ``shore`` (1 node), nothing between them. Fast; what most tests use.
* ``up --vessels N [--vessel-nodes K] [--mirror-raw]``: vessels ``vessel1``… (K nodes
  each, default 3), the shore, a link proxy (Toxiproxy) and one MirrorMaker 2 per vessel
  that copies the vessel's outputs ashore exactly once, to ``<vessel>.<topic>``. The
  link can be cut, black-holed or slowed to a satellite's pace (``link``); ``mirror
  status`` says what waits to cross and names every record lost to retention.

Everything a deployment owns lives under one directory: ``cluster.json`` (ports, broker
ids and PIDs, so another process can run ``status``/``down``), ``log4j2.properties``, per
node ``<cluster>-<n>/`` with ``server.properties``, ``data/``, ``server.log`` (Kafka's
log) and ``console.log`` (the JVM's stdout and stderr); mirrored, also ``link/``
(``toxiproxy.json``, ``console.log``) and per vessel ``mirror-<vessel>/``
(``mm2.properties``, ``server.log``, ``console.log``).

Modules, each importing only those listed before it:

* :mod:`~deploy.kafka.errors`: the launcher's exceptions.
* :mod:`~deploy.kafka.logs`: reading a node's logs back for error messages.
* :mod:`~deploy.kafka.topics`: the contract's topics (partitions, retention).
* :mod:`~deploy.kafka.ports`: free ports and cluster ids for a new deployment.
* :mod:`~deploy.kafka.parts`: nodes, clusters, the link proxy, MirrorMakers (records).
* :mod:`~deploy.kafka.layout`: the plan of a deployment and its ``cluster.json``.
* :mod:`~deploy.kafka.config`: each node's ``server.properties``, the log4j2 config.
* :mod:`~deploy.kafka.processes`: starting daemons detached, liveness, stopping, locking.
* :mod:`~deploy.kafka.jars`: fetching the jars; ``java`` command lines.
* :mod:`~deploy.kafka.nodes`: formatting a node's storage, starting its JVM.
* :mod:`~deploy.kafka.admin`: waiting for brokers, creating topics.
* :mod:`~deploy.kafka.link`: Toxiproxy: building it, starting it, link modes.
* :mod:`~deploy.kafka.mirror`: MirrorMaker 2's ``mm2.properties`` and JVM.
* :mod:`~deploy.kafka.internal`: MirrorMaker's offsets and task states ashore.
* :mod:`~deploy.kafka.backlog`: what waits to cross, what was lost.
* :mod:`~deploy.kafka.mirroring`: starting and stopping link and mirrors; the ``link``
  and ``mirror`` commands and ``mirror status``.
* :mod:`~deploy.kafka.commands`: ``up``, ``down``, ``status``, ``kill_broker``,
  ``start_broker``, the library API the CLI (``__main__``) and the tests call.

Imports: of the project only :mod:`flows.contract` (topic names are spelled there
once); otherwise ``confluent_kafka`` and the standard library. Nothing here imports
Bytewax, the flows or the tests. Needs Java 17 and, once each, Maven (the jars) and Go
(Toxiproxy, only for mirrored deployments).
"""
