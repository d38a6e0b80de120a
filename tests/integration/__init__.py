"""Real processes: the job's command line, kill -9 and resume, other processes on the table,
Kafka clusters."""
