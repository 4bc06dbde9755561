"""Kubernetes manifests for a plan: a LeaderWorkerSet over several nodes, a Deployment on one."""
