"""The Kubernetes executor (LABELLOOP_TRAINER_EXECUTOR=kubernetes): each trainer job is a batch/v1 Job.

One module per concern:
  template.py   LABELLOOP_JOB_TEMPLATE, the pod settings the Helm chart writes (JobTemplate)
  manifests.py  labels, names and the Job objects themselves (build_job), pure
  pods.py       what a Job's pods say: image pulls, OOM kills, unschedulable GPUs (diagnose_pods)
  status.py     a JobStatus from the Job, its pods and the job's own files (job_status), pure
  api.py        the Kubernetes API calls (JobsApi)
  outputs.py    the job's files under its output prefix (spec.json, status.json, result.json)
  sharded.py    large predictions as Indexed Jobs, one pod per shard, merged on completion
  executor.py   KubernetesExecutor, which puts them together
"""

from labelloop.trainer.executors.kubernetes.executor import KubernetesExecutor

__all__ = ["KubernetesExecutor"]
