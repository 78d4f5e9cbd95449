"""Where training jobs run: a local worker process, or Kubernetes Jobs."""
