"""Running several replicas of a server on this machine behind a load balancer (HAProxy), and
keeping them running: the balancer's configuration, the replica processes and their supervision."""
